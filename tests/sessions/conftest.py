"""The verdict tests' small case (six manifest items, one scope, the company's agent) and
the bundle tests' exporter, for session tests."""

from tests.bundles.conftest import bundles
from tests.verdicts.conftest import case

__all__ = ["bundles", "case"]
