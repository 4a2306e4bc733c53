"""The manifest's values and their one canonical rendering: constants, the entry and the
header, validation, leaves (DESIGN.md, Formats → Manifest file).

Names without a leading underscore here are shared by the package's modules; what callers
may use is what ``deletion_audit.core.manifest`` exports.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.errors import FormatError
from deletion_audit.core.merkle import leaf_hash

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
BLOCK: Final = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SOURCE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_is_hex64 = _HEX64.fullmatch
_is_source = _SOURCE.fullmatch
_CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

# Exactly the canonical line of a valid entry: JCS sorts keys (digest, kind, pdq, size,
# source, subject), and none of these values needs escaping. Sizes are checked for range
# after the match.
ENTRY_LINE = re.compile(
    rb'\{"digest":"([0-9a-f]{64})","kind":"(image|video|record|document|other)"'
    rb'(?:,"pdq":"([0-9a-f]{64})")?,"size":(0|[1-9][0-9]{0,15})'
    rb'(?:,"source":"([A-Za-z0-9._:/-]{1,128})")?(?:,"subject":"([0-9a-f]{64})")?\}'
)
# The same expression over a block of lines (one per line, anchored at each line's ends):
# one call per block instead of one per line — per call, the regular expression engine's
# set-up costs about as much as matching a whole entry. ``findall`` gives absent optional
# groups as empty bytes (no present value is empty).
ENTRY_LINES = re.compile(rb"^" + ENTRY_LINE.pattern + rb"$", re.MULTILINE)
# `{"digest":"` + 64 hex + `",`: what follows is the rest of the entry's members.
REST_OFFSET: Final = 77
SUBJECT_VALUE = re.compile(rb'"subject":"([0-9a-f]{64})"')

HEADER_FIELDS: Final = frozenset(
    {"format", "version", "case", "hash", "count", "created_at", "examiner_key_id"}
)
ENTRY_FIELDS: Final = frozenset({"digest", "kind", "size", "subject", "pdq", "source"})
REQUIRED_ENTRY_FIELDS: Final = ("digest", "kind", "size")

StrPath = str | os.PathLike[str]
# digest, kind, pdq, size, source, subject: the byte groups of a matched entry line.
Groups = tuple[bytes, bytes, bytes | None, bytes, bytes | None, bytes | None]


class ManifestError(FormatError):
    """A manifest file that breaks the format; ``line`` is 1-based (``None``: no line)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.problem = message


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


def entry_problem(fields: dict[str, object]) -> str | None:
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


def _valid_entry(digest: object, kind: object, size: object, subject: object, pdq: object,
                 source: object) -> bool:
    # One cheap conjunction on the common path (a build makes millions of entries); the
    # detailed checks (entry_problem) run only to explain a failure.
    return (
        type(digest) is str and _is_hex64(digest) is not None
        and kind in KINDS
        and type(size) is int and 0 <= size <= MAX_SAFE_INTEGER
        and (subject is None or (type(subject) is str and _is_hex64(subject) is not None))
        and (pdq is None or (type(pdq) is str and _is_hex64(pdq) is not None))
        and (source is None or (type(source) is str and _is_source(source) is not None))
    )


def _render(digest: str, kind: str, size: int, subject: str | None, pdq: str | None,
            source: str | None) -> bytes:
    """The JCS line of a valid entry, without its newline.

    Rendered from the fixed key order rather than through a general JCS encoder: every
    value is lowercase hex, a kind word, a location code or a safe integer, none of which
    JCS escapes or reformats (the tests hold it equal to :func:`canonical_json`).
    """
    parts = [f'{{"digest":"{digest}","kind":"{kind}"']
    if pdq is not None:
        parts.append(f',"pdq":"{pdq}"')
    parts.append(f',"size":{size}')
    if source is not None:
        parts.append(f',"source":"{source}"')
    if subject is not None:
        parts.append(f',"subject":"{subject}"')
    parts.append("}")
    return "".join(parts).encode("ascii")


def _invalid_entry(fields: dict[str, Any]) -> FormatError:
    return FormatError(f"manifest entry: {entry_problem(fields) or 'invalid value'}")


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
        if not _valid_entry(self.digest, self.kind, self.size, self.subject, self.pdq,
                            self.source):
            raise _invalid_entry(self.to_json_dict())

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "kind": self.kind, "size": self.size}
        for name in ("subject", "pdq", "source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def canonical(self) -> bytes:
        """The JCS line of this entry, without its newline."""
        return _render(self.digest, self.kind, self.size, self.subject, self.pdq, self.source)


_new_entry = object.__new__
_set = object.__setattr__


def trusted_entry(
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


def leaf_from_line(line: bytes, digest: bytes) -> bytes:
    # Dropping the first member of a canonical object leaves the canonical object of the
    # rest: JCS orders members by key, and removing one does not reorder the others.
    return digest + hashlib.sha256(b"{" + line[REST_OFFSET:]).digest()


def entry_leaf(entry: ManifestEntry) -> bytes:
    """``digest ‖ SHA-256(JCS(entry without digest))``: the 64-byte Merkle leaf data."""
    return leaf_from_line(entry.canonical(), bytes.fromhex(entry.digest))


PreparedEntry = tuple[bytes, bytes]
"""An entry's canonical line (newline included) and its RFC 6962 leaf hash, as made by
:func:`prepare_entry`: what :func:`write_manifest` needs of an entry. A plain tuple so that
parallel workers can prepare entries and send them back cheaply."""


def prepare_entry(entry: ManifestEntry) -> PreparedEntry:
    line = entry.canonical()
    return line + b"\n", leaf_hash(leaf_from_line(line, bytes.fromhex(entry.digest)))


def prepare_values(
    digest: str, kind: str, size: int, subject: str | None = None, pdq: str | None = None,
    source: str | None = None,
) -> PreparedEntry:
    """``prepare_entry(ManifestEntry(...))`` without the intermediate object, with the same
    checks: for producers of millions of entries (a build's hashing workers)."""
    if not _valid_entry(digest, kind, size, subject, pdq, source):
        given = {"digest": digest, "kind": kind, "size": size, "subject": subject, "pdq": pdq,
                 "source": source}
        raise _invalid_entry({k: v for k, v in given.items() if v is not None})
    line = _render(digest, kind, size, subject, pdq, source)
    return line + b"\n", leaf_hash(leaf_from_line(line, bytes.fromhex(digest)))


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


def header_problem(fields: dict[str, object]) -> str | None:
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
        if problem := header_problem(self._fields()):
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
