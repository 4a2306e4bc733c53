"""Writing a manifest: entries sorted by digest (spilling sorted runs to disk beyond a
bound), duplicates refused or merged, the root and tallies made on the way, the file
replaced atomically."""

from __future__ import annotations

import hashlib
import heapq
import os
import tempfile
from binascii import a2b_hex
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Final

from deletion_audit.core.manifest._format import (
    BLOCK,
    KINDS,
    REST_OFFSET,
    SUBJECT_VALUE,
    ManifestEntry,
    ManifestError,
    ManifestHeader,
    ManifestSummary,
    PreparedEntry,
    StrPath,
    prepare_entry,
)
from deletion_audit.core.merkle import EMPTY_ROOT, Frontier


@dataclass(frozen=True, slots=True)
class WrittenManifest:
    summary: ManifestSummary
    duplicates: int
    """Entries dropped because an entry with the same digest was kept."""
    kinds: Mapping[str, int]
    """Items written, by kind."""
    subjects: int
    """Distinct subject pseudonyms: the number of people, counted without names."""


# Entries held in memory before a sorted run is spilled to disk: about 100 MB of lines.
RUN_SIZE: Final = 500_000
# Lines per block written (and tallied) on the spilled path.
_STREAM_BLOCK: Final = 8192


class _Deduplicator:
    """Keeps one line per digest of sorted entry lines, and tallies what it keeps: the
    root, the kinds, the distinct subjects."""

    def __init__(self, *, merge_duplicates: bool) -> None:
        self.merge = merge_duplicates
        self.count = 0
        self.root = b""
        self.duplicates = 0
        self.kinds: Counter[bytes] = Counter()
        self.subjects: set[bytes] = set()

    def _duplicate(self, digest: bytes) -> None:
        if not self.merge:
            raise ManifestError(f"duplicate digest {digest.decode()} in the entries")
        self.duplicates += 1

    def _tally(self, body: bytes) -> None:
        """Count kinds and collect subjects over many lines at once, at C speed: in a
        canonical line ``"kind":"…"`` and ``"subject":"…"`` occur once each, and no value
        can hold a quote, so substring counts are exact."""
        for kind in KINDS:
            self.kinds[kind.encode()] += body.count(b'"kind":"%b"' % kind.encode())
        if b'"subject":"' in body:
            self.subjects.update(SUBJECT_VALUE.findall(body))

    def unique_body(self, prepared: list[PreparedEntry]) -> bytes:
        """The in-memory path over sorted prepared entries: whole-list passes, with the leaf
        hashes already made (by parallel workers, for a build)."""
        lines: list[bytes] = []
        leaves: list[bytes] = []
        prev = b""
        for line, leaf in prepared:
            digest = line[11:75]
            if digest == prev:
                self._duplicate(digest)
                continue
            prev = digest
            lines.append(line)
            leaves.append(leaf)
        self.count = len(leaves)
        self.root = _fold_root(leaves)
        body = b"".join(lines)
        self._tally(body)
        return body

    def unique_stream(self, sorted_lines: Iterable[bytes]) -> Iterator[bytes]:
        """The spilled path: blocks of lines, O(log n) state for the root (merkle.Frontier)
        and one block of lines at a time."""
        frontier = Frontier()
        append = frontier.append
        sha256 = hashlib.sha256
        prev = b""
        pending: list[bytes] = []
        for line in sorted_lines:
            digest = line[11:75]
            if digest == prev:
                self._duplicate(digest)
                continue
            prev = digest
            append(sha256(b"\x00" + a2b_hex(digest)
                          + sha256(b"{" + line[REST_OFFSET:-1]).digest()).digest())
            pending.append(line)
            if len(pending) == _STREAM_BLOCK:
                yield self._block(pending)
                pending = []
        if pending:
            yield self._block(pending)
        self.count = frontier.size
        self.root = frontier.root()

    def _block(self, lines: list[bytes]) -> bytes:
        block = b"".join(lines)
        self._tally(block)
        return block


def _fold_root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 6962 root of leaf hashes held in memory, one level at a time.

    Pairing left to right and carrying an odd last node up unchanged builds the same tree
    as RFC 6962 §2.1's split at the largest power of two below n (the tests hold it equal
    to merkle.MemoryTree); whole-level comprehensions make it several times faster than
    appending to a Frontier.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = leaf_hashes
    sha256 = hashlib.sha256
    while len(level) > 1:
        paired = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2],
                                                                      strict=False)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` through a temporary file beside ``path``, renamed into place so that
    a failure never leaves a half-written manifest; return the SHA-256 of what was written."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                hasher.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hasher.hexdigest()


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            yield block


def _spill(batch: list[PreparedEntry], directory: Path, index: int) -> Path:
    # Runs keep lines only: the merge recomputes each leaf as it streams.
    batch.sort()
    path = directory / f"run-{index:05d}"
    with path.open("wb") as handle:
        handle.writelines(line for line, _ in batch)
    return path


def _sorted_unique(
    entries: Iterable[ManifestEntry | PreparedEntry], work: Path, dedup: _Deduplicator,
    run_size: int,
) -> list[bytes] | Path:
    """The unique sorted lines: in memory for a small input, else a body file in ``work``."""
    runs: list[Path] = []
    batch: list[PreparedEntry] = []
    for entry in entries:
        batch.append(prepare_entry(entry) if isinstance(entry, ManifestEntry) else entry)
        if len(batch) >= run_size:
            runs.append(_spill(batch, work, len(runs)))
            batch = []
    if not runs:
        # By line only: a line decides the order, and comparing bytes is cheaper than tuples.
        batch.sort(key=itemgetter(0))
        # One block, one write: per-line writes would cost more than the lines' hashing.
        return [dedup.unique_body(batch)]
    if batch:
        runs.append(_spill(batch, work, len(runs)))
    del batch
    body = work / "body"
    with ExitStack() as stack:
        sources = [stack.enter_context(run.open("rb")) for run in runs]
        out = stack.enter_context(body.open("wb"))
        out.writelines(dedup.unique_stream(heapq.merge(*sources)))
    return body


def write_manifest(
    path: StrPath,
    header: ManifestHeader,
    entries: Iterable[ManifestEntry | PreparedEntry],
    *,
    merge_duplicates: bool = False,
    run_size: int = RUN_SIZE,
) -> WrittenManifest:
    """Sort ``entries`` by digest and write a manifest to ``path`` (replaced atomically).

    Entries are value objects or, from parallel producers, :func:`prepare_entry` pairs
    (trusted as made by it).
    The header's ``count`` is set to the number of entries written: callers rarely know it
    before duplicates are merged. Two entries with one digest are an error unless
    ``merge_duplicates``, which keeps the one whose canonical line sorts first. Beyond
    ``run_size`` entries, sorted runs are spilled beside ``path`` and merged, so memory
    stays bounded whatever the input size.
    """
    target = Path(path)
    dedup = _Deduplicator(merge_duplicates=merge_duplicates)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".manifest-sort-") as tmp_dir:
        body = _sorted_unique(entries, Path(tmp_dir), dedup, run_size)
        count = dedup.count
        if count == 0:
            raise ManifestError("empty manifest: there are no entries to write")
        final_header = header.with_count(count)
        lines = body if isinstance(body, list) else _file_blocks(body)
        sha256 = _write_atomically(target, chain([final_header.canonical() + b"\n"], lines))
    summary = ManifestSummary(final_header, count, dedup.root, sha256)
    kinds = {kind.decode(): n for kind, n in sorted(dedup.kinds.items()) if n}
    return WrittenManifest(summary, dedup.duplicates, kinds, len(dedup.subjects))
