"""Subcommands of the ``deletion-audit`` command line."""
