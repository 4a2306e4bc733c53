"""The log's leaf schema (version 1).

The log is public, so a leaf never carries what it must not reveal. Each event type declares
its disclosure once, here:

- **public** events are logged in clear: ``JCS({"v": 1, "type": T, "event": {...}})``;
- **restricted** events (anything naming items, people or places) are logged as a salted
  commitment: ``JCS({"v": 1, "type": T, "commitment": hex(SHA-256(T ‖ JCS(event) ‖ salt))})``.
  A plain digest of a face image in a public log would invite confirmation attacks, so the
  32-byte random salt is released only in court bundles, which can then open the commitment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.errors import FormatError

LEAF_VERSION = 1
SALT_SIZE = 32
# C2SP tlog-tiles entry bundles length-prefix each entry with a uint16.
MAX_LEAF_SIZE = 65535


class Disclosure(StrEnum):
    PUBLIC = "public"
    RESTRICTED = "restricted"


# Every event type the service logs, with its disclosure. A new event type is added here,
# nowhere else, so its disclosure is decided where a reviewer sees all of them.
EVENT_TYPES: dict[str, Disclosure] = {
    # the log's own identity and every key that will ever sign something we accept
    "key-registration": Disclosure.PUBLIC,
    "key-revocation": Disclosure.PUBLIC,
    "checkpoint": Disclosure.PUBLIC,
    "verdict": Disclosure.PUBLIC,
    "summary": Disclosure.PUBLIC,
    # case facts: they name parties, people, places, items
    "case": Disclosure.RESTRICTED,
    "case-status": Disclosure.RESTRICTED,
    "party": Disclosure.RESTRICTED,
    "membership": Disclosure.RESTRICTED,
    "manifest": Disclosure.RESTRICTED,
    "scope": Disclosure.RESTRICTED,
    "binding": Disclosure.RESTRICTED,
    "data-flow": Disclosure.RESTRICTED,
    "obligation": Disclosure.RESTRICTED,
    "acceptance": Disclosure.RESTRICTED,
    "challenge": Disclosure.RESTRICTED,
    "deletion-request": Disclosure.RESTRICTED,
    "attestation": Disclosure.RESTRICTED,
    "refusal": Disclosure.RESTRICTED,
    "judgment": Disclosure.RESTRICTED,
    "session": Disclosure.RESTRICTED,
    "review": Disclosure.RESTRICTED,
}


@dataclass(frozen=True)
class Leaf:
    """A decoded leaf: ``event`` for public ones, ``commitment`` for restricted ones."""

    type: str
    disclosure: Disclosure
    event: Mapping[str, Any] | None = None
    commitment: bytes | None = None


@dataclass(frozen=True)
class EncodedLeaf:
    """What a writer stores: the leaf bytes, and the salt (restricted events only)."""

    data: bytes
    salt: bytes | None


def disclosure_of(event_type: str) -> Disclosure:
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise FormatError(f"unknown event type {event_type!r}") from None


def commitment(event_type: str, event: Mapping[str, Any], salt: bytes) -> bytes:
    """``SHA-256(type ‖ JCS(event) ‖ salt)``: the type cannot run into the JSON, which
    always starts with ``{``, and the salt has a fixed length."""
    if len(salt) != SALT_SIZE:
        raise FormatError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(event_type.encode() + canonical_json(event) + salt).digest()


def encode_leaf(
    event_type: str, event: Mapping[str, Any], *, salt: bytes | None = None
) -> EncodedLeaf:
    """Encode an event as leaf bytes by its type's disclosure (a fresh salt if restricted)."""
    disclosure = disclosure_of(event_type)
    body: dict[str, Any] = {"v": LEAF_VERSION, "type": event_type}
    if disclosure is Disclosure.PUBLIC:
        body["event"] = dict(event)
        used_salt = None
    else:
        used_salt = salt if salt is not None else secrets.token_bytes(SALT_SIZE)
        body["commitment"] = commitment(event_type, event, used_salt).hex()
    data = canonical_json(body)
    if len(data) > MAX_LEAF_SIZE:
        raise FormatError(f"{event_type} leaf is {len(data)} bytes, over {MAX_LEAF_SIZE}")
    return EncodedLeaf(data=data, salt=used_salt)


def decode_leaf(data: bytes) -> Leaf:
    """Parse leaf bytes strictly: they are ours, so anything unexpected is an error."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"leaf is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") != LEAF_VERSION:
        raise FormatError(f"leaf is not a version {LEAF_VERSION} leaf object")
    if canonical_json(body) != data:
        raise FormatError("leaf is not in canonical (RFC 8785) form")
    event_type = body.get("type")
    if not isinstance(event_type, str):
        raise FormatError("leaf has no event type")
    disclosure = disclosure_of(event_type)
    if disclosure is Disclosure.PUBLIC:
        event = body.get("event")
        if set(body) != {"v", "type", "event"} or not isinstance(event, dict):
            raise FormatError(f"public {event_type} leaf must carry exactly one event object")
        return Leaf(type=event_type, disclosure=disclosure, event=event)
    value = body.get("commitment")
    if set(body) != {"v", "type", "commitment"} or not isinstance(value, str):
        raise FormatError(f"restricted {event_type} leaf must carry exactly a commitment")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise FormatError("leaf commitment is not hex") from None
    if len(raw) != hashlib.sha256().digest_size or value != raw.hex():
        raise FormatError("leaf commitment is not 32 bytes of lowercase hex")
    return Leaf(type=event_type, disclosure=disclosure, commitment=raw)


def opens(leaf: Leaf, event: Mapping[str, Any], salt: bytes) -> bool:
    """Whether a restricted leaf's commitment opens to ``event`` with ``salt``."""
    if leaf.commitment is None:
        return False
    return hmac.compare_digest(leaf.commitment, commitment(leaf.type, event, salt))
