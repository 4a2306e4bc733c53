"""Reading a manifest: streamed in fixed-size blocks with O(log n) state, every line
checked, every problem named with its line number.

Each entry line is matched against one regular expression that accepts exactly the
canonical rendering of a valid entry; only a line that fails it is parsed as JSON, to say
precisely what is wrong with it. This is the server's import path for tens of millions of
entries.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from binascii import a2b_hex
from collections.abc import Iterable, Iterator
from typing import IO, Any, NoReturn

from deletion_audit.core.canonical import canonical_json, parse_json
from deletion_audit.core.errors import FormatError
from deletion_audit.core.manifest._format import (
    BLOCK,
    ENTRY_FIELDS,
    ENTRY_LINE,
    ENTRY_LINES,
    HEADER_FIELDS,
    MAX_LINE,
    MAX_SAFE_INTEGER,
    REQUIRED_ENTRY_FIELDS,
    REST_OFFSET,
    Groups,
    ManifestEntry,
    ManifestError,
    ManifestHeader,
    ManifestSummary,
    StrPath,
    entry_problem,
    header_problem,
    trusted_entry,
)
from deletion_audit.core.merkle import Frontier

# Lines matched per call: the per-call cost is spread thin, and the fields of a slice stay
# small (a 1 MiB block's would be several MB of tuples).
FIND_LINES = 2048
# (digest, kind, pdq, size, source, subject) as ``findall`` gives them: absent is b"".
BatchFields = tuple[bytes, bytes, bytes, bytes, bytes, bytes]


def _field_problems(obj: dict[str, Any], allowed: frozenset[str],
                    required: Iterable[str], what: str) -> str | None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        return f"unknown field {unknown[0]!r} in {what}"
    for name in required:
        if name not in obj:
            return f"missing field {name!r} in {what}"
    return None


def _parse_json_line(raw: bytes, what: str, number: int) -> dict[str, Any]:
    if not raw:
        raise ManifestError("empty line", number)
    if raw.endswith(b"\r"):
        raise ManifestError("line ends with CR (Windows line ending); lines end with LF",
                            number)
    try:
        obj = parse_json(raw, what=what)
    except FormatError as exc:
        raise ManifestError(f"bad JSON: {exc}", number) from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} is not a JSON object", number)
    return obj


def parse_header(raw: bytes, number: int = 1) -> ManifestHeader:
    """The header from its line (no newline); ManifestError if malformed or empty."""
    obj = _parse_json_line(raw, "header", number)
    if problem := _field_problems(obj, HEADER_FIELDS, sorted(HEADER_FIELDS), "header"):
        raise ManifestError(problem, number)
    if problem := header_problem(obj):
        raise ManifestError(f"header: {problem}", number)
    if raw != canonical_json(obj):
        raise ManifestError("header is not in canonical form (RFC 8785 JCS)", number)
    if obj["count"] == 0:
        raise ManifestError("empty manifest: count 0 is refused", number)
    return ManifestHeader(obj["case"], obj["count"], obj["created_at"], obj["examiner_key_id"])


def _diagnose_entry(raw: bytes, number: int) -> NoReturn:
    """Why a line failed the fast check. A valid entry in canonical form always matches
    :data:`ENTRY_LINE`, so what is left once the content is valid is its form."""
    if len(raw) > MAX_LINE:
        raise ManifestError(f"line longer than {MAX_LINE} bytes", number)
    obj = _parse_json_line(raw, "entry", number)
    if problem := _field_problems(obj, ENTRY_FIELDS, REQUIRED_ENTRY_FIELDS, "entry"):
        raise ManifestError(problem, number)
    if problem := entry_problem(obj):
        raise ManifestError(problem, number)
    raise ManifestError("entry is not in canonical form (RFC 8785 JCS)", number)


def _entry_from_groups(groups: Groups) -> ManifestEntry:
    digest, kind, pdq, size, source, subject = groups
    return trusted_entry(
        digest.decode(), kind.decode(), int(size),
        None if subject is None else subject.decode(),
        None if pdq is None else pdq.decode(),
        None if source is None else source.decode(),
    )


def _blocks_of_lines(stream: IO[bytes], hasher: Any) -> Iterator[tuple[list[bytes], bool]]:
    """Lists of complete lines (no newlines), then a final list holding the unterminated
    remainder, if any, flagged ``True``. Hashes every byte read."""
    tail = b""
    while True:
        block = stream.read(BLOCK)
        if not isinstance(block, bytes | bytearray):
            raise TypeError("read_manifest needs a binary file object")
        if not block:
            break
        hasher.update(block)
        lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
        tail = lines.pop()
        if len(tail) > MAX_LINE:
            # Report it at the first line that is too long, counted by the caller.
            lines.append(tail)
            tail = b""
        yield lines, False
    if tail:
        yield [tail], True


class ManifestReader:
    """Streams a manifest: the header at once, entries on iteration, then the summary.

    Iterate exactly once (``for entry in reader`` or :meth:`records`); :attr:`summary` is
    available after the last entry. Every problem raises :class:`ManifestError` with its
    1-based line number.
    """

    def __init__(self, source: StrPath | IO[bytes]) -> None:
        if isinstance(source, str | os.PathLike):
            self._stream: IO[bytes] = open(source, "rb")  # closed by close()
            self._owned = True
        else:
            self._stream, self._owned = source, False
        self._hasher = hashlib.sha256()
        self._chunks = _blocks_of_lines(self._stream, self._hasher)
        self._pending: list[bytes] = []
        self._unterminated = False
        self._summary: ManifestSummary | None = None
        self._started = False
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> ManifestHeader:
        for lines, unterminated in self._chunks:
            if not lines:
                continue
            if unterminated:
                raise ManifestError("truncated file: the last line has no newline", 1)
            if len(lines[0]) > MAX_LINE:
                raise ManifestError(f"line longer than {MAX_LINE} bytes", 1)
            header = parse_header(lines[0])
            self._pending = lines[1:]
            return header
        raise ManifestError("empty file: no header line", 1)

    def __enter__(self) -> ManifestReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._stream.close()

    def __iter__(self) -> Iterator[ManifestEntry]:
        for groups, _ in self._scan():
            yield _entry_from_groups(groups)

    @property
    def summary(self) -> ManifestSummary:
        if self._summary is None:
            raise RuntimeError("the manifest has not been read to its end yet")
        return self._summary

    def read_all(self) -> ManifestSummary:
        """Validate every remaining entry and return the summary."""
        # No entry objects: validation alone is what signing and verifying need.
        for _ in self._checked_batches():
            pass
        return self.summary

    def records(self) -> Iterator[tuple[ManifestEntry, bytes]]:
        """Each entry with its RFC 6962 leaf hash (what a stored tree keeps)."""
        for groups, leaf in self._scan():
            yield _entry_from_groups(groups), leaf

    def raw_records(self) -> Iterator[tuple[Groups, bytes]]:
        """Each entry as its checked fields, undecoded, with its leaf hash: the bulk import's
        path, which writes the fields straight to the database without entry objects.

        The fields are ``(digest, kind, pdq, size, source, subject)``: ASCII bytes exactly
        as on the line (hex, kind word, decimal, location code), ``None`` when absent.
        """
        return self._scan()

    def field_batches(self) -> Iterator[list[BatchFields]]:
        """The checked fields of the entries, a block of lines at a time, in file order:
        for a reader that needs neither entry objects nor leaves (a replay's items).

        As :meth:`raw_records`, except that an absent optional field is ``b""`` (no
        present one is empty)."""
        for found, _leaves in self._checked_batches():
            yield found

    def _scan(self) -> Iterator[tuple[Groups, bytes]]:
        for found, leaves in self._checked_batches():
            for (digest, kind, pdq, size, source, subject), leaf in zip(found, leaves,
                                                                         strict=True):
                yield (digest, kind, pdq or None, size, source or None, subject or None), leaf

    def _batches(self) -> Iterator[tuple[list[bytes], bool]]:
        """The lines a block at a time, in slices of at most :data:`FIND_LINES`."""
        for lines, unterminated in itertools.chain([(self._pending, False)], self._chunks):
            for lo in range(0, len(lines), FIND_LINES):
                yield lines[lo:lo + FIND_LINES], unterminated

    def _checked_batches(self) -> Iterator[tuple[list[BatchFields], list[bytes]]]:
        """Every entry line checked, a block at a time: its fields and leaf hashes."""
        if self._started:
            raise RuntimeError("a manifest reader can be iterated only once")
        self._started = True
        try:
            yield from self._scan_blocks()
        finally:
            self.close()

    def _scan_blocks(self) -> Iterator[tuple[list[BatchFields], list[bytes]]]:
        # The import path of millions of lines: one regular expression call per block
        # (ENTRY_LINES), then locals and three hashes per line, the tree's right edge kept
        # inline (Frontier.append's bookkeeping is a third of the per-line cost).
        expected = self.header.count
        find = ENTRY_LINES.findall
        sha256 = hashlib.sha256
        unhex = a2b_hex
        stack: list[bytes] = []
        size = 0
        prev = b""
        for lines, unterminated in self._batches():
            first = size + 2  # the line number of lines[0]
            found: list[BatchFields] = find(b"\n".join(lines))
            if unterminated or size + len(lines) > expected or len(found) != len(lines):
                _diagnose_block(lines, first, expected, unterminated, prev)
            leaves: list[bytes] = []
            keep = leaves.append
            for raw, groups in zip(lines, found, strict=True):
                digest = groups[0]
                if digest <= prev:
                    _out_of_order(digest, prev, size + 2)
                if len(groups[3]) == 16 and int(groups[3]) > MAX_SAFE_INTEGER:
                    raise ManifestError(f"size is larger than {MAX_SAFE_INTEGER}", size + 2)
                prev = digest
                # RFC 6962 §2.1: the leaf hash, then every perfect subtree it completes.
                h = sha256(b"\x00" + unhex(digest)
                           + sha256(b"{" + raw[REST_OFFSET:]).digest()).digest()
                keep(h)
                index = size
                while index & 1:
                    h = sha256(b"\x01" + stack.pop() + h).digest()
                    index >>= 1
                stack.append(h)
                size += 1
            yield found, leaves
        if size < expected:
            raise ManifestError(
                f"truncated file: header count mismatch, the header says {expected} entries "
                f"but the file has {size}", size + 2)
        self._summary = ManifestSummary(
            header=self.header, count=size, root=Frontier(size=size, stack=stack).root(),
            sha256=self._hasher.hexdigest(),
        )


def _diagnose_block(lines: list[bytes], first: int, expected: int, unterminated: bool,
                    prev: bytes) -> NoReturn:
    """Why a block failed the fast check: its lines checked one by one, in the order the
    fast path checks them, so the first problem is the one reported (a valid block always
    passes the fast check)."""
    for number, raw in enumerate(lines, start=first):
        if unterminated:
            raise ManifestError("truncated file: the last line has no newline", number)
        if number - 1 > expected:
            raise ManifestError(
                f"header count mismatch: more entries than the header's count {expected}",
                number)
        m = ENTRY_LINE.fullmatch(raw)
        if m is None:
            _diagnose_entry(raw, number)
        digest = m.group(1)
        if digest <= prev:
            _out_of_order(digest, prev, number)
        if len(m.group(4)) == 16 and int(m.group(4)) > MAX_SAFE_INTEGER:
            raise ManifestError(f"size is larger than {MAX_SAFE_INTEGER}", number)
        prev = digest
    raise AssertionError("a block whose every line is an entry passes the fast check")


def _out_of_order(digest: bytes, prev: bytes, number: int) -> NoReturn:
    what = "duplicate" if digest == prev else "out-of-order"
    raise ManifestError(f"{what} digest {digest.decode()}: entries must be strictly ascending "
                        "by digest", number)


def read_manifest(source: StrPath | IO[bytes]) -> ManifestReader:
    """Open a manifest for streaming; the header is read and checked at once."""
    return ManifestReader(source)


def validate_manifest(source: StrPath | IO[bytes]) -> ManifestSummary:
    """Read and check a whole manifest in bounded memory; return what it commits to."""
    with read_manifest(source) as reader:
        return reader.read_all()
