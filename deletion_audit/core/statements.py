"""in-toto Statement v1 (in-toto/attestation ``spec/v1/statement.md``).

Parsing follows the spec's rules for any predicate type: unknown fields are ignored (the
monotonic principle), ``subject`` is a non-empty list whose elements each carry a digest
set, ``predicateType`` is a case-normalised URI, ``predicate`` is an object (absent means
empty). Our own predicates are checked separately, by :mod:`deletion_audit.core.predicates`,
so generic tools (``envelope sign/verify``) accept any valid Statement.

A parsed :class:`Statement` keeps only the fields the spec defines: when relaying someone
else's statement, sign or store its original bytes, not :func:`statement_bytes` of it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from deletion_audit.core.canonical import canonical_json, parse_json
from deletion_audit.core.errors import FormatError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

# DigestSet (spec/v1/digest_set.md): the standard algorithms are lowercase hex. Fixed-size
# ones are checked for their exact length; the rest only for being lowercase hex.
_HEX_DIGEST_SIZES: dict[str, int | None] = {
    "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128,
    "sha512_224": 56, "sha512_256": 64,
    "sha3_224": 56, "sha3_256": 64, "sha3_384": 96, "sha3_512": 128,
    "sm3": 64, "ripemd160": 40, "sha1": 40, "md5": 32,
    "shake128": None, "shake256": None, "blake2b": None, "blake2s": None, "gost": None,
}
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
# RFC 3986 scheme; TypeURIs are case-normalised (field_types.md), so lowercase only.
_URI = re.compile(r"[a-z][a-z0-9+.-]*:[^\s\x00-\x1f\x7f]+")
_AUTHORITY = re.compile(r"[a-z][a-z0-9+.-]*://([^/?#]*)")


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Subject:
    """A ResourceDescriptor of the subject list: a name (optional in the spec) and a
    digest set mapping algorithm to value."""

    name: str | None
    digest: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", _frozen(self.digest))

    @property
    def sha256(self) -> str | None:
        return self.digest.get("sha256")

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.name is None else {"name": self.name}
        out["digest"] = dict(self.digest)
        return out


@dataclass(frozen=True)
class Statement:
    subject: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", tuple(self.subject))
        object.__setattr__(self, "predicate", _frozen(self.predicate))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_json_dict() for s in self.subject],
            "predicateType": self.predicate_type,
            "predicate": dict(self.predicate),
        }


def statement_bytes(statement: Statement) -> bytes:
    """The canonical (RFC 8785) bytes of a statement: what our producers sign."""
    return canonical_json(statement.to_json_dict())


def statement_id(payload: bytes) -> str:
    """A statement's id: lowercase hex SHA-256 of the DSSE payload bytes as signed."""
    return hashlib.sha256(payload).hexdigest()


def parse_statement(data: bytes | str | Mapping[str, Any]) -> Statement:
    """Parse an in-toto Statement v1; FormatError says what is wrong and where."""
    obj = data if isinstance(data, Mapping) else parse_json(data, what="statement")
    if not isinstance(obj, Mapping):
        raise FormatError("statement is not a JSON object")
    statement_type = obj.get("_type")
    if statement_type != STATEMENT_TYPE:
        raise FormatError(
            f"statement _type must be {STATEMENT_TYPE!r}, got {statement_type!r}"
        )
    raw_subjects = obj.get("subject")
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise FormatError("statement subject must be a non-empty list")
    subjects = tuple(_parse_subject(i, s) for i, s in enumerate(raw_subjects))
    predicate_type = obj.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise FormatError("statement predicateType must be a non-empty string")
    check_type_uri(predicate_type, what="statement predicateType")
    predicate = obj.get("predicate", {})
    if not isinstance(predicate, Mapping):
        raise FormatError("statement predicate must be a JSON object")
    return Statement(subject=subjects, predicate_type=predicate_type, predicate=predicate)


def check_type_uri(value: str, *, what: str) -> None:
    """A TypeURI (field_types.md): an RFC 3986 URI whose scheme and authority are lowercase."""
    if not _URI.fullmatch(value):
        raise FormatError(f"{what} is not a URI: {value!r}")
    authority = _AUTHORITY.match(value)
    if authority and authority.group(1) != authority.group(1).lower():
        raise FormatError(f"{what} must have a lowercase authority: {value!r}")


def _parse_subject(index: int, obj: object) -> Subject:
    where = f"statement subject[{index}]"
    if not isinstance(obj, Mapping):
        raise FormatError(f"{where} is not an object")
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise FormatError(f"{where}.name is not a string")
    digest = obj.get("digest")
    if not isinstance(digest, Mapping) or not digest:
        raise FormatError(f"{where}.digest must be a non-empty object")
    for algorithm, value in digest.items():
        _check_digest(f"{where}.digest.{algorithm}", algorithm, value)
    return Subject(name=name, digest=digest)


def _check_digest(where: str, algorithm: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{where} must be a non-empty string")
    if algorithm not in _HEX_DIGEST_SIZES:
        return  # the spec asks consumers to ignore algorithms they do not know
    if not _LOWER_HEX.fullmatch(value):
        raise FormatError(f"{where} must be lowercase hex")
    size = _HEX_DIGEST_SIZES[algorithm]
    if size is not None and len(value) != size:
        raise FormatError(f"{where} must be {size} hex digits, got {len(value)}")
