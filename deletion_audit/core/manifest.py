"""The evidence manifest file: JSON Lines, one header then one entry per item (DESIGN.md,
Formats → Manifest file).

Every line is the RFC 8785 (JCS) form of its object, entries strictly ascending by digest.
An entry's leaf is ``digest ‖ SHA-256(JCS(entry without digest))`` (64 bytes), so a
membership proof shows the item's digest and nothing of its person or source; the
commitment is the RFC 6962 root over those leaves.

The reader is the server's import path for tens of millions of entries, so it streams in
fixed-size blocks with O(log n) state, and checks each line against one regular expression
that accepts exactly the canonical rendering of a valid entry. Only a line that fails it is
parsed as JSON, to say precisely what is wrong with it.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
import tempfile
from binascii import a2b_hex
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, NoReturn, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deletion_audit.core import dsse
from deletion_audit.core.canonical import canonical_json, parse_json
from deletion_audit.core.errors import CoreError, FormatError, PredicateError, SignatureError
from deletion_audit.core.merkle import EMPTY_ROOT, Frontier, leaf_hash
from deletion_audit.core.statements import Statement, Subject, parse_statement

if TYPE_CHECKING:
    # Imported where used: pydantic costs a tenth of a second at start-up, a tenth of the
    # whole small-file build benchmark, and building or reading a manifest needs none of it.
    from deletion_audit.core.predicates import ManifestPredicate

FORMAT_NAME: Final = "deletion-audit-manifest"
FORMAT_VERSION: Final = 1
HASH_ALGORITHM: Final = "sha256"

Kind = Literal["image", "video", "record", "document", "other"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)

# I-JSON (RFC 7493): integers beyond 2**53 - 1 do not survive every JSON reader, and JCS
# renders numbers as IEEE doubles.
MAX_SAFE_INTEGER: Final = 2**53 - 1
MAX_SOURCE_LENGTH: Final = 128
MAX_CASE_LENGTH: Final = 256
# The longest valid entry is about 420 bytes and a header under 1.1 KiB; anything longer is
# refused before it is buffered whole.
MAX_LINE: Final = 4096
_BLOCK: Final = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SOURCE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_is_hex64 = _HEX64.fullmatch
_is_source = _SOURCE.fullmatch
_CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

# Exactly the canonical line of a valid entry: JCS sorts keys (digest, kind, pdq, size,
# source, subject), and none of these values needs escaping. Sizes are checked for range
# after the match.
_ENTRY_LINE = re.compile(
    rb'\{"digest":"([0-9a-f]{64})","kind":"(image|video|record|document|other)"'
    rb'(?:,"pdq":"([0-9a-f]{64})")?,"size":(0|[1-9][0-9]{0,15})'
    rb'(?:,"source":"([A-Za-z0-9._:/-]{1,128})")?(?:,"subject":"([0-9a-f]{64})")?\}'
)
# `{"digest":"` + 64 hex + `",`: what follows is the rest of the entry's members.
_REST_OFFSET: Final = 77
_SUBJECT_VALUE = re.compile(rb'"subject":"([0-9a-f]{64})"')

_HEADER_FIELDS: Final = frozenset(
    {"format", "version", "case", "hash", "count", "created_at", "examiner_key_id"}
)
_ENTRY_FIELDS: Final = frozenset({"digest", "kind", "size", "subject", "pdq", "source"})
_REQUIRED_ENTRY_FIELDS: Final = ("digest", "kind", "size")

StrPath = str | os.PathLike[str]
# digest, kind, pdq, size, source, subject: the byte groups of a matched entry line.
_Groups = tuple[bytes, bytes, bytes | None, bytes, bytes | None, bytes | None]


class ManifestError(FormatError):
    """A manifest file that breaks the format; ``line`` is 1-based (``None``: no line)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.problem = message


class ManifestMismatchError(CoreError):
    """A manifest and its signed statement disagree, or the signature does not verify.

    ``checks`` names every check that failed: ``statement``, ``digest``, ``count``,
    ``root``, ``header``, ``signature``, ``examiner-key``.
    """

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.checks = tuple(check for check, _ in failures)
        self.failures = tuple(failures)
        super().__init__("; ".join(f"{check}: {why}" for check, why in failures))


# -- values --------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hex64_problem(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string"
    if len(value) != 64:
        return f"{name} has wrong length: {len(value)} characters, expected 64 hex digits"
    if not _HEX64.fullmatch(value):
        return f"{name} has bad hex: lowercase 0-9a-f only"
    return None


def _size_problem(value: object) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "size must be an integer"
    if value < 0:
        return "size must not be negative"
    if value > MAX_SAFE_INTEGER:
        return f"size is larger than {MAX_SAFE_INTEGER}"
    return None


def _source_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "source must be a string"
    if not 1 <= len(value) <= MAX_SOURCE_LENGTH:
        return f"source must be 1 to {MAX_SOURCE_LENGTH} characters, got {len(value)}"
    if not _SOURCE.fullmatch(value):
        return "source may hold only A-Z a-z 0-9 . _ : / -"
    return None


def _entry_problem(fields: dict[str, object]) -> str | None:
    for name in ("digest", "pdq", "subject"):
        if name in fields and (problem := _hex64_problem(name, fields[name])):
            return problem
    kind = fields["kind"]
    if kind not in KINDS:
        return f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})"
    if problem := _size_problem(fields["size"]):
        return problem
    if "source" in fields:
        return _source_problem(fields["source"])
    return None


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One evidence item. Optional fields are ``None`` when absent from the line."""

    digest: str
    kind: str
    size: int
    subject: str | None = None
    pdq: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        # One cheap conjunction on the common path (a build makes millions of entries);
        # the detailed checks run only to explain a failure.
        ok = (
            type(self.digest) is str and _is_hex64(self.digest) is not None
            and self.kind in KINDS
            and type(self.size) is int and 0 <= self.size <= MAX_SAFE_INTEGER
            and (self.subject is None
                 or (type(self.subject) is str and _is_hex64(self.subject) is not None))
            and (self.pdq is None or (type(self.pdq) is str and _is_hex64(self.pdq) is not None))
            and (self.source is None
                 or (type(self.source) is str and _is_source(self.source) is not None))
        )
        if not ok:
            problem = _entry_problem(self.to_json_dict()) or "invalid value"
            raise FormatError(f"manifest entry: {problem}")

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "kind": self.kind, "size": self.size}
        for name in ("subject", "pdq", "source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def canonical(self) -> bytes:
        """The JCS line of this entry, without its newline.

        Rendered from the fixed key order rather than through a general JCS encoder: every
        value is lowercase hex, a kind word, a location code or a safe integer, none of which
        JCS escapes or reformats (the tests hold it equal to :func:`canonical_json`).
        """
        parts = [f'{{"digest":"{self.digest}","kind":"{self.kind}"']
        if self.pdq is not None:
            parts.append(f',"pdq":"{self.pdq}"')
        parts.append(f',"size":{self.size}')
        if self.source is not None:
            parts.append(f',"source":"{self.source}"')
        if self.subject is not None:
            parts.append(f',"subject":"{self.subject}"')
        parts.append("}")
        return "".join(parts).encode("ascii")


_new_entry = object.__new__
_set = object.__setattr__


def _trusted_entry(
    digest: str, kind: str, size: int, subject: str | None, pdq: str | None, source: str | None
) -> ManifestEntry:
    # The reader's values already passed the exact line expression; validating them again
    # in __post_init__ would double the cost of an import.
    entry: ManifestEntry = _new_entry(ManifestEntry)
    _set(entry, "digest", digest)
    _set(entry, "kind", kind)
    _set(entry, "size", size)
    _set(entry, "subject", subject)
    _set(entry, "pdq", pdq)
    _set(entry, "source", source)
    return entry


def _leaf_from_line(line: bytes, digest: bytes) -> bytes:
    # Dropping the first member of a canonical object leaves the canonical object of the
    # rest: JCS orders members by key, and removing one does not reorder the others.
    return digest + hashlib.sha256(b"{" + line[_REST_OFFSET:]).digest()


def entry_leaf(entry: ManifestEntry) -> bytes:
    """``digest ‖ SHA-256(JCS(entry without digest))``: the 64-byte Merkle leaf data."""
    return _leaf_from_line(entry.canonical(), bytes.fromhex(entry.digest))


PreparedEntry = tuple[bytes, bytes]
"""An entry's canonical line (newline included) and its RFC 6962 leaf hash, as made by
:func:`prepare_entry`: what :func:`write_manifest` needs of an entry. A plain tuple so that
parallel workers can prepare entries and send them back cheaply."""


def prepare_entry(entry: ManifestEntry) -> PreparedEntry:
    line = entry.canonical()
    return line + b"\n", leaf_hash(_leaf_from_line(line, bytes.fromhex(entry.digest)))


def format_created_at(value: datetime) -> str:
    """UTC, whole seconds, ``Z``: the one spelling of ``created_at``."""
    if value.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created_at_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _CREATED_AT.fullmatch(value):
        return "created_at must be a UTC time like 2026-03-02T01:30:00Z"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return f"created_at {value!r} is not a real date and time"
    return None


def _header_problem(fields: dict[str, object]) -> str | None:
    if fields["format"] != FORMAT_NAME:
        return f"format must be {FORMAT_NAME!r}, got {fields['format']!r}"
    version = fields["version"]
    if not _is_int(version) or version != FORMAT_VERSION:
        return f"unsupported version {version!r} (this reader knows version {FORMAT_VERSION})"
    if fields["hash"] != HASH_ALGORITHM:
        return f"hash must be {HASH_ALGORITHM!r}, got {fields['hash']!r}"
    case = fields["case"]
    if not isinstance(case, str) or not 1 <= len(case) <= MAX_CASE_LENGTH or not case.strip():
        return f"case must be a non-blank string of at most {MAX_CASE_LENGTH} characters"
    count = fields["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return "count must be a non-negative integer"
    if count > MAX_SAFE_INTEGER:
        return f"count is larger than {MAX_SAFE_INTEGER}"
    if problem := _created_at_problem(fields["created_at"]):
        return problem
    key_id = fields["examiner_key_id"]
    if key_id is not None and (problem := _hex64_problem("examiner_key_id", key_id)):
        return problem
    return None


@dataclass(frozen=True, slots=True)
class ManifestHeader:
    """Line 1 of a manifest. ``count`` 0 is representable (a writer fills it in), but a
    manifest file with count 0 is refused: an empty manifest proves nothing."""

    case: str
    count: int
    created_at: str
    examiner_key_id: str | None = None

    def __post_init__(self) -> None:
        if problem := _header_problem(self._fields()):
            raise FormatError(f"manifest header: {problem}")

    def _fields(self) -> dict[str, object]:
        return {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "case": self.case,
            "hash": HASH_ALGORITHM, "count": self.count, "created_at": self.created_at,
            "examiner_key_id": self.examiner_key_id,
        }

    def to_json_dict(self) -> dict[str, Any]:
        return dict(self._fields())

    def canonical(self) -> bytes:
        return canonical_json(self.to_json_dict())

    def with_count(self, count: int) -> ManifestHeader:
        return ManifestHeader(self.case, count, self.created_at, self.examiner_key_id)


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What a whole manifest file commits to."""

    header: ManifestHeader
    count: int
    root: bytes
    """RFC 6962 root over the entry leaves."""
    sha256: str
    """Lowercase hex SHA-256 of the file's bytes."""

    @property
    def root_hex(self) -> str:
        return self.root.hex()


# -- reading -------------------------------------------------------------------------------


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
    if problem := _field_problems(obj, _HEADER_FIELDS, sorted(_HEADER_FIELDS), "header"):
        raise ManifestError(problem, number)
    if problem := _header_problem(obj):
        raise ManifestError(f"header: {problem}", number)
    if raw != canonical_json(obj):
        raise ManifestError("header is not in canonical form (RFC 8785 JCS)", number)
    if obj["count"] == 0:
        raise ManifestError("empty manifest: count 0 is refused", number)
    return ManifestHeader(obj["case"], obj["count"], obj["created_at"], obj["examiner_key_id"])


def _diagnose_entry(raw: bytes, number: int) -> NoReturn:
    """Why a line failed the fast check. A valid entry in canonical form always matches
    :data:`_ENTRY_LINE`, so what is left once the content is valid is its form."""
    if len(raw) > MAX_LINE:
        raise ManifestError(f"line longer than {MAX_LINE} bytes", number)
    obj = _parse_json_line(raw, "entry", number)
    if problem := _field_problems(obj, _ENTRY_FIELDS, _REQUIRED_ENTRY_FIELDS, "entry"):
        raise ManifestError(problem, number)
    if problem := _entry_problem(obj):
        raise ManifestError(problem, number)
    raise ManifestError("entry is not in canonical form (RFC 8785 JCS)", number)


def _entry_from_groups(groups: _Groups) -> ManifestEntry:
    digest, kind, pdq, size, source, subject = groups
    return _trusted_entry(
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
        block = stream.read(_BLOCK)
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
        for _ in self._scan():
            pass
        return self.summary

    def records(self) -> Iterator[tuple[ManifestEntry, bytes]]:
        """Each entry with its RFC 6962 leaf hash (what a stored tree keeps)."""
        for groups, leaf in self._scan():
            yield _entry_from_groups(groups), leaf

    def _batches(self) -> Iterator[tuple[list[bytes], bool]]:
        yield self._pending, False
        yield from self._chunks

    def _scan(self) -> Iterator[tuple[_Groups, bytes]]:
        if self._started:
            raise RuntimeError("a manifest reader can be iterated only once")
        self._started = True
        try:
            yield from self._scan_lines()
        finally:
            self.close()

    def _scan_lines(self) -> Iterator[tuple[_Groups, bytes]]:
        # The import path of millions of lines: locals, one regex, three hashes per line.
        expected = self.header.count
        frontier = Frontier()
        append = frontier.append
        match = _ENTRY_LINE.fullmatch
        sha256 = hashlib.sha256
        unhex = a2b_hex
        number = 1
        prev = b""
        for lines, unterminated in self._batches():
            for raw in lines:
                number += 1
                if unterminated:
                    raise ManifestError("truncated file: the last line has no newline", number)
                if number - 1 > expected:
                    raise ManifestError(
                        f"header count mismatch: more entries than the header's count "
                        f"{expected}", number)
                m = match(raw)
                if m is None:
                    _diagnose_entry(raw, number)
                groups: _Groups = m.groups()  # type: ignore[assignment]
                digest = groups[0]
                if digest <= prev:
                    what = "duplicate" if digest == prev else "out-of-order"
                    raise ManifestError(
                        f"{what} digest {digest.decode()}: entries must be strictly "
                        f"ascending by digest", number)
                if len(groups[3]) == 16 and int(groups[3]) > MAX_SAFE_INTEGER:
                    raise ManifestError(f"size is larger than {MAX_SAFE_INTEGER}", number)
                prev = digest
                leaf = leaf_hash(unhex(digest) + sha256(b"{" + raw[_REST_OFFSET:]).digest())
                append(leaf)
                yield groups, leaf
        if frontier.size < expected:
            raise ManifestError(
                f"truncated file: header count mismatch, the header says {expected} entries "
                f"but the file has {frontier.size}", number + 1)
        self._summary = ManifestSummary(
            header=self.header, count=frontier.size, root=frontier.root(),
            sha256=self._hasher.hexdigest(),
        )


def read_manifest(source: StrPath | IO[bytes]) -> ManifestReader:
    """Open a manifest for streaming; the header is read and checked at once."""
    return ManifestReader(source)


def validate_manifest(source: StrPath | IO[bytes]) -> ManifestSummary:
    """Read and check a whole manifest in bounded memory; return what it commits to."""
    with read_manifest(source) as reader:
        return reader.read_all()


# -- writing -------------------------------------------------------------------------------


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
            self.subjects.update(_SUBJECT_VALUE.findall(body))

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
        """The spilled path: one line at a time, O(log n) state (merkle.Frontier)."""
        frontier = Frontier()
        append = frontier.append
        sha256 = hashlib.sha256
        prev = b""
        for line in sorted_lines:
            digest = line[11:75]
            if digest == prev:
                self._duplicate(digest)
                continue
            prev = digest
            append(sha256(b"\x00" + a2b_hex(digest)
                          + sha256(b"{" + line[_REST_OFFSET:-1]).digest()).digest())
            self._tally(line)
            yield line
        self.count = frontier.size
        self.root = frontier.root()


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
        while block := handle.read(_BLOCK):
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
        batch.sort()
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


# -- the signed statement ------------------------------------------------------------------


def manifest_predicate(summary: ManifestSummary) -> ManifestPredicate:
    from deletion_audit.core.predicates import ManifestPredicate

    header = summary.header
    return ManifestPredicate(
        format_name=FORMAT_NAME, format_version=FORMAT_VERSION, case_number=header.case,
        hash_algorithm=HASH_ALGORITHM, count=summary.count, root=summary.root_hex,
        created_at=datetime.fromisoformat(header.created_at),
        examiner_key_id=header.examiner_key_id,
    )


def statement_for(summary: ManifestSummary, name: str) -> Statement:
    """The statement an examiner signs: subject = the file, predicate = its commitment."""
    predicate = manifest_predicate(summary)
    return Statement(
        subject=(Subject(name=name, digest={"sha256": summary.sha256}),),
        predicate_type=predicate.PREDICATE_TYPE,
        predicate=predicate.to_predicate(),
    )


def manifest_statement(path: StrPath) -> Statement:
    """Validate the manifest at ``path`` fully and return its statement."""
    return statement_for(validate_manifest(path), Path(path).name)


@dataclass(frozen=True, slots=True)
class ManifestVerification:
    summary: ManifestSummary
    predicate: ManifestPredicate
    signer_hints: tuple[str, ...]
    """The envelope's keyids: unauthenticated hints."""
    key_ids: tuple[str, ...] = ()
    """Trusted keys whose signatures verified; empty when no key was given."""


def _signed_predicate(envelope: dsse.Envelope) -> tuple[Statement, ManifestPredicate]:
    from deletion_audit.core.predicates import ManifestPredicate, expect_predicate

    if envelope.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
        raise ManifestMismatchError([("statement", f"payload type is {envelope.payload_type}, "
                                                   f"not {dsse.IN_TOTO_PAYLOAD_TYPE}")])
    try:
        statement = parse_statement(envelope.payload)
        return statement, expect_predicate(statement, ManifestPredicate)
    except (FormatError, PredicateError) as exc:
        raise ManifestMismatchError([("statement", str(exc))]) from None


def _content_failures(summary: ManifestSummary, statement: Statement,
                      predicate: ManifestPredicate) -> list[tuple[str, str]]:
    failures: list[tuple[str, str]] = []
    signed = [s.sha256 for s in statement.subject]
    if summary.sha256 not in signed:
        failures.append(("digest", f"the file's SHA-256 {summary.sha256} is not the signed "
                                   f"subject {', '.join(str(s) for s in signed)}"))
    if predicate.count != summary.count:
        failures.append(("count", f"the file has {summary.count} entries, the statement "
                                  f"says {predicate.count}"))
    if predicate.root != summary.root_hex:
        failures.append(("root", f"the file's root {summary.root_hex} is not the signed "
                                 f"root {predicate.root}"))
    expected = manifest_predicate(summary)
    differing = [
        name for name in ("format_name", "format_version", "case_number", "hash_algorithm",
                          "created_at", "examiner_key_id")
        if getattr(expected, name) != getattr(predicate, name)
    ]
    if differing:
        failures.append(("header", f"the file's header differs from the statement in "
                                   f"{', '.join(differing)}"))
    return failures


def check_manifest_envelope(path: StrPath, envelope: dsse.Envelope) -> ManifestVerification:
    """Every check but the signature: the file against the statement in ``envelope``.

    ManifestError if the file is malformed; ManifestMismatchError naming each failed check.
    """
    statement, predicate = _signed_predicate(envelope)
    summary = validate_manifest(path)
    failures = _content_failures(summary, statement, predicate)
    if failures:
        raise ManifestMismatchError(failures)
    hints = tuple(s.keyid for s in envelope.signatures)
    return ManifestVerification(summary, predicate, hints)


def verify_manifest(
    path: StrPath, envelope: dsse.Envelope, public_keys: Sequence[Ed25519PublicKey]
) -> ManifestVerification:
    """Check the file's digest, count, root and header against the signed statement, and
    the signature against ``public_keys``, together; ManifestMismatchError names every check
    that failed. A header that names the examiner's key must be signed by that key."""
    if not public_keys:
        raise ValueError("verify_manifest needs at least one public key")
    statement, predicate = _signed_predicate(envelope)
    summary = validate_manifest(path)
    failures = _content_failures(summary, statement, predicate)
    key_ids: tuple[str, ...] = ()
    try:
        key_ids = dsse.verify(envelope, public_keys).key_ids
    except SignatureError as exc:
        failures.append(("signature", str(exc)))
    examiner = summary.header.examiner_key_id
    if key_ids and examiner is not None and examiner not in key_ids:
        failures.append(("examiner-key", f"the header names examiner key {examiner}, but "
                                         f"the envelope is signed by {', '.join(key_ids)}"))
    if failures:
        raise ManifestMismatchError(failures)
    hints = tuple(s.keyid for s in envelope.signatures)
    return ManifestVerification(summary, predicate, hints, key_ids)
