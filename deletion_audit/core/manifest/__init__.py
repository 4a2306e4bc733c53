"""The evidence manifest file: JSON Lines, one header then one entry per item (DESIGN.md,
Formats → Manifest file).

Every line is the RFC 8785 (JCS) form of its object, entries strictly ascending by digest.
An entry's leaf is ``digest ‖ SHA-256(JCS(entry without digest))`` (64 bytes), so a
membership proof shows the item's digest and nothing of its person or source; the
commitment is the RFC 6962 root over those leaves, and the examiner signs a statement
whose subject is the file and whose predicate carries the header, the count and the root.

The package splits by use case — values (``_format``), reading (``_reader``), writing
(``_writer``), the signed statement (``_statement``) — and this module is its interface.
"""

from typing import TYPE_CHECKING, Any

from deletion_audit.core.manifest._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    HASH_ALGORITHM,
    KINDS,
    MAX_CASE_LENGTH,
    MAX_LINE,
    MAX_SAFE_INTEGER,
    MAX_SOURCE_LENGTH,
    Groups,
    Kind,
    ManifestEntry,
    ManifestError,
    ManifestHeader,
    ManifestSummary,
    PreparedEntry,
    entry_leaf,
    format_created_at,
    prepare_entry,
    prepare_values,
)
from deletion_audit.core.manifest._reader import (
    BatchFields,
    ManifestReader,
    parse_header,
    read_manifest,
    validate_manifest,
)
from deletion_audit.core.manifest._writer import RUN_SIZE, WrittenManifest, write_manifest

if TYPE_CHECKING:
    from deletion_audit.core.manifest._statement import (
        ManifestMismatchError,
        ManifestVerification,
        check_manifest_envelope,
        manifest_predicate,
        manifest_statement,
        statement_for,
        verify_manifest,
        verify_summary,
    )

# The statement half needs cryptography and pydantic, a third of a build's start-up, and a
# build, a reader or a writer uses neither: it is imported on first use (PEP 562).
_STATEMENT_NAMES = frozenset({
    "ManifestMismatchError", "ManifestVerification", "check_manifest_envelope",
    "manifest_predicate", "manifest_statement", "statement_for", "verify_manifest",
    "verify_summary",
})


def __getattr__(name: str) -> Any:
    if name in _STATEMENT_NAMES:
        from deletion_audit.core.manifest import _statement

        return getattr(_statement, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HASH_ALGORITHM",
    "KINDS",
    "MAX_CASE_LENGTH",
    "MAX_LINE",
    "MAX_SAFE_INTEGER",
    "MAX_SOURCE_LENGTH",
    "RUN_SIZE",
    "BatchFields",
    "Groups",
    "Kind",
    "ManifestEntry",
    "ManifestError",
    "ManifestHeader",
    "ManifestMismatchError",
    "ManifestReader",
    "ManifestSummary",
    "ManifestVerification",
    "PreparedEntry",
    "WrittenManifest",
    "check_manifest_envelope",
    "entry_leaf",
    "format_created_at",
    "manifest_predicate",
    "manifest_statement",
    "parse_header",
    "prepare_entry",
    "prepare_values",
    "read_manifest",
    "statement_for",
    "validate_manifest",
    "verify_manifest",
    "verify_summary",
    "write_manifest",
]
