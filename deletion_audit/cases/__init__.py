"""Cases: parties, members, permissions, status, obligations and deadlines, scopes."""
