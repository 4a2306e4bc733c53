"""The registered manifest file, regenerated from the database for a bundle.

The import keeps the header (``Manifest.header``) and every entry's fields
(``manifest_items``), not the file; since every line of a valid manifest is the one
canonical (RFC 8785) rendering of its values, the file comes back byte for byte. It is
streamed a page of rows at a time — a 26-million-entry manifest is 5 GB — and its SHA-256,
which the examiner signed, is checked as it is written.
"""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.manifest._format import trusted_entry
from deletion_audit.models.manifests import KIND_NAMES, Manifest, ManifestItem

PAGE = 20_000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


class ManifestExportError(RuntimeError):
    """The stored rows do not give back the registered file: the database is damaged."""


def write_manifest_file(session: Session, manifest_id: int, out: BinaryIO) -> None:
    """Write manifest ``manifest_id``'s JSON Lines file to ``out``.

    Raises :class:`ManifestExportError` if the manifest is unknown or still importing, or
    if what was written does not have the registered SHA-256 (the caller discards ``out``
    then: it was written before the last byte could be checked)."""
    manifest = session.get(Manifest, manifest_id)
    if manifest is None or manifest.state == "importing":
        raise ManifestExportError(f"no registered manifest {manifest_id}")
    hasher = hashlib.sha256()
    header = canonical_json(manifest.header) + b"\n"
    hasher.update(header)
    out.write(header)
    written = 0
    after = -1
    items = _table(ManifestItem).c
    page = (select(items.ordinal, items.digest, items.kind, items.size, items.subject,
                   items.pdq, items.source)
            .where(items.manifest_id == manifest_id).order_by(items.ordinal).limit(PAGE))
    conn = session.connection()  # Core rows: the ORM's per-row loading doubled the time
    while True:
        rows = conn.execute(page.where(items.ordinal > after)).all()
        if not rows:
            break
        lines = []
        for ordinal, digest, kind, size, subject, pdq, source in rows:
            if ordinal != written:
                raise ManifestExportError(f"manifest {manifest_id} has no entry {written}")
            written += 1
            # Unchecked entries: the values passed the import's checks, and the file's
            # SHA-256 is held against the signed one below.
            lines.append(trusted_entry(
                digest.hex(), KIND_NAMES[kind], size,
                subject.hex() if subject is not None else None,
                pdq.hex() if pdq is not None else None, source).canonical())
        chunk = b"\n".join(lines) + b"\n"
        hasher.update(chunk)
        out.write(chunk)
        after = rows[-1][0]
    if written != manifest.count:
        raise ManifestExportError(f"manifest {manifest_id} has {written} stored entries, "
                                  f"registered with {manifest.count}")
    if hasher.digest() != manifest.file_sha256:
        raise ManifestExportError(
            f"manifest {manifest_id}'s regenerated file has SHA-256 {hasher.hexdigest()}, "
            f"not the registered {manifest.file_sha256.hex()}")
