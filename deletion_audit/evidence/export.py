"""The registered manifest file, regenerated from the database for a bundle.

The import keeps the header (``Manifest.header``) and every entry's fields
(``manifest_items``), not the file; since every line of a valid manifest is the one
canonical (RFC 8785) rendering of its values, the file comes back byte for byte. It is
streamed a page of rows at a time — a 26-million-entry manifest is 5 GB — and its SHA-256,
which the examiner signed, is checked as it is written.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.core import manifest as mf
from deletion_audit.core.canonical import canonical_json
from deletion_audit.models.manifests import KIND_NAMES, Manifest, ManifestItem

PAGE = 20_000


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
    while True:
        rows = session.execute(
            select(ManifestItem.ordinal, ManifestItem.digest, ManifestItem.kind,
                   ManifestItem.size, ManifestItem.subject, ManifestItem.pdq,
                   ManifestItem.source)
            .where(ManifestItem.manifest_id == manifest_id, ManifestItem.ordinal > after)
            .order_by(ManifestItem.ordinal).limit(PAGE)).all()
        if not rows:
            break
        lines = []
        for ordinal, digest, kind, size, subject, pdq, source in rows:
            if ordinal != written:
                raise ManifestExportError(f"manifest {manifest_id} has no entry {written}")
            written += 1
            lines.append(mf.ManifestEntry(
                digest=digest.hex(), kind=KIND_NAMES[kind], size=size,
                subject=subject.hex() if subject is not None else None,
                pdq=pdq.hex() if pdq is not None else None, source=source).canonical())
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
