"""``deletion-audit demo``: case 1 of CASES.md told end to end over real processes."""
