"""deletion-audit: verifiable data-deletion audits."""

__version__ = "0.1.0"
