"""The manifest's items for a replay: the registered file, streamed into a fresh database.

The import (evidence/manifests.py) checks every line, hashes each entry three times, builds
the tree nodes and the filter; a replay needs only the rows the verdict reads. The file's
SHA-256 must be the one the manifest event logged — which the examiner signed together
with the root — so checking it proves the rows are the registered ones, and each line is
only matched against the canonical entry expression (the one the import's reader uses)
and written in batches: bounded memory at any size.
"""

from __future__ import annotations

import hashlib
from binascii import unhexlify
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from deletion_audit.core.manifest import ManifestError, parse_header
from deletion_audit.core.manifest._format import BLOCK, ENTRY_LINE, MAX_LINE
from deletion_audit.evidence import bulk
from deletion_audit.evidence.manifests import KIND_BYTES

BATCH = 50_000


class ManifestFileError(ValueError):
    """The manifest file is not the one the log registered, or not a manifest at all."""


@dataclass(frozen=True)
class LoadedManifest:
    header: dict[str, object]
    count: int
    sha256: str


def load_items(session: Session, *, path: Path, manifest_id: int) -> LoadedManifest:
    """Insert the file's entries as ``manifest_items`` rows of ``manifest_id``; return its
    header, entry count and SHA-256 for the caller to hold against the logged ones."""
    hasher = hashlib.sha256()
    match = ENTRY_LINE.fullmatch
    kinds = KIND_BYTES
    rows: list[bulk.ItemRow] = []
    ordinal = 0
    prev = b""
    header = None
    tail = b""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ManifestFileError(f"{path}: cannot read the manifest file: {exc}") from None
    with stream:
        while True:
            block = stream.read(BLOCK)
            if not block:
                break
            hasher.update(block)
            lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
            tail = lines.pop()
            if len(tail) > MAX_LINE:
                raise ManifestFileError(f"{path}: line {ordinal + 2}: longer than {MAX_LINE} "
                                        "bytes")
            start = 0
            if header is None and lines:
                try:
                    header = parse_header(lines[0])
                except ManifestError as exc:
                    raise ManifestFileError(f"{path}: {exc}") from None
                start = 1
            for raw in (lines[start:] if start else lines):
                m = match(raw)
                if m is None:
                    raise ManifestFileError(f"{path}: line {ordinal + 2}: not a canonical "
                                            "manifest entry")
                digest, kind, pdq, size, source, subject = m.groups()
                if digest <= prev:
                    raise ManifestFileError(f"{path}: line {ordinal + 2}: entries are not "
                                            "strictly ascending by digest")
                prev = digest
                rows.append((
                    manifest_id, ordinal, unhexlify(digest), kinds[kind], int(size),
                    None if subject is None else unhexlify(subject),
                    None if source is None else source.decode("ascii"),
                    None if pdq is None else unhexlify(pdq),
                ))
                ordinal += 1
                if len(rows) >= BATCH:
                    bulk.insert_items(session, rows)
                    rows = []
    if tail:
        raise ManifestFileError(f"{path}: truncated: the last line has no newline")
    if header is None:
        raise ManifestFileError(f"{path}: empty file: no header line")
    bulk.insert_items(session, rows)
    return LoadedManifest(header=header.to_json_dict(), count=ordinal,
                          sha256=hasher.hexdigest())
