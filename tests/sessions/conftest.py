"""The verdict tests' small case (six manifest items, one scope, the company's agent) for
session tests."""

from tests.verdicts.conftest import case

__all__ = ["case"]
