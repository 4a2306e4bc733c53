"""``python -m deletion_audit_agent``: the same as the ``deletion-audit-agent`` command."""

from deletion_audit_agent.cli import main

main()
