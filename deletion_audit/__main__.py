from deletion_audit.cli import main

main()
