"""JSON in and out: the one canonical serialisation (RFC 8785, JCS) and one strict reader.

Signatures, leaf hashes and commitments are computed over these bytes, so every producer in
the project serialises through :func:`canonical_json` and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import rfc8785

from deletion_audit.core.errors import FormatError


def _plain(value: Any) -> Any:
    # rfc8785 only walks dict, list and tuple; read-only mappings (MappingProxyType, the
    # frozen value objects' fields) must become dicts first.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 (JCS) serialisation of a JSON value as UTF-8 bytes."""
    try:
        return rfc8785.dumps(_plain(obj))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise FormatError(f"value cannot be canonicalised as JSON: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormatError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise FormatError(f"{name} is not JSON")


def parse_json(data: bytes | str, *, what: str = "input") -> Any:
    """Parse JSON strictly: UTF-8 only, no duplicate keys, no NaN or Infinity.

    Signed bytes are read by more than one implementation; a duplicate key is read as its
    first value by some and its last by others, so it is refused rather than resolved.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what} is not UTF-8: {exc}") from None
    else:
        text = data
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, our own FormatError from the hooks, and
        # integers past Python's digit limit.
        raise FormatError(f"{what} is not valid JSON: {exc}") from None
