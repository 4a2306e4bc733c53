"""DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, protocol v1).

What is signed is ``PAE(payloadType, payload)``, never the JSON wire form, so the wire form
may be re-encoded freely (either base64 alphabet, any key order) without breaking
signatures. The flip side is the rule every caller follows: after :func:`verify`, use
:attr:`VerifiedEnvelope.payload` — the bytes that were verified — and never parse the
envelope again to get at the payload.

A signature's ``keyid`` is a hint that orders the search, never a filter: a signature whose
keyid names no trusted key is still tried against every trusted key (the spec says keyid is
optional and unauthenticated). Each trusted key counts at most once towards a threshold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.canonical import parse_json
from deletion_audit.core.errors import FormatError, SignatureError
from deletion_audit.core.keys import key_id

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
# Enough for every multi-party record we make (prosecutor plus witnesses) while bounding the
# work a hostile envelope can ask of a verifier (signatures × trusted keys).
MAX_SIGNATURES = 100


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``.

    LEN is the decimal length in bytes (of the UTF-8 type), not in characters.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class VerifiedEnvelope:
    """The outcome of a successful :func:`verify`: the payload to use from here on."""

    payload: bytes
    payload_type: str
    key_ids: tuple[str, ...]
    """Our key ids of the trusted keys that verified, in signature order, each once."""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "payload": b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in self.signatures],
        }

    def to_json(self) -> bytes:
        """The wire form as a small, readable file (signatures do not depend on it)."""
        return json.dumps(self.to_json_dict(), indent=2).encode("utf-8") + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> Envelope:
        """Parse the wire form strictly; unknown fields are ignored, as the spec asks."""
        obj = data if isinstance(data, Mapping) else parse_json(data, what="envelope")
        if not isinstance(obj, Mapping):
            raise FormatError("envelope is not a JSON object")
        payload_type = obj.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise FormatError("envelope has no payloadType string")
        payload_b64 = obj.get("payload")
        if not isinstance(payload_b64, str):
            raise FormatError("envelope has no payload string")
        try:
            payload = b64decode(payload_b64)
        except FormatError as exc:
            raise FormatError(f"envelope payload: {exc}") from None
        raw_signatures = obj.get("signatures")
        if not isinstance(raw_signatures, list) or not raw_signatures:
            raise FormatError("envelope has no signatures list (at least one is needed)")
        if len(raw_signatures) > MAX_SIGNATURES:
            raise FormatError(
                f"envelope has {len(raw_signatures)} signatures, over {MAX_SIGNATURES}"
            )
        signatures = tuple(_parse_signature(i, s) for i, s in enumerate(raw_signatures))
        return cls(payload=payload, payload_type=payload_type, signatures=signatures)


def from_json(data: bytes | str | Mapping[str, Any]) -> Envelope:
    """Module-level spelling of :meth:`Envelope.from_json`."""
    return Envelope.from_json(data)


def _parse_signature(index: int, obj: object) -> Signature:
    where = f"envelope signature {index}"
    if not isinstance(obj, Mapping):
        raise FormatError(f"{where} is not an object")
    keyid = obj.get("keyid", "")
    if not isinstance(keyid, str):
        raise FormatError(f"{where}: keyid is not a string")
    sig_b64 = obj.get("sig")
    if not isinstance(sig_b64, str):
        raise FormatError(f"{where} has no sig string")
    try:
        sig = b64decode(sig_b64)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from None
    if not sig:
        raise FormatError(f"{where} is empty")
    return Signature(keyid=keyid, sig=sig)


def _signature(payload: bytes, payload_type: str, key: Ed25519PrivateKey) -> Signature:
    return Signature(keyid=key_id(key.public_key()), sig=key.sign(pae(payload_type, payload)))


def sign(payload: bytes, payload_type: str, key: Ed25519PrivateKey) -> Envelope:
    """A new envelope over ``payload`` with one signature by ``key``."""
    if not payload_type.isascii() or not payload_type:
        # Some DSSE implementations count characters, not bytes, in PAE; ASCII makes both
        # counts agree (REFERENCE.md, DSSE).
        raise FormatError(f"payload type must be non-empty ASCII, got {payload_type!r}")
    return Envelope(payload, payload_type, (_signature(payload, payload_type, key),))


def cosign(envelope: Envelope, key: Ed25519PrivateKey) -> Envelope:
    """The envelope with one more signature, by ``key``.

    Refused (SignatureError) if that key already signed: a second signature by one key
    would add nothing, and readers that index signatures by keyid reject duplicates.
    """
    public = key.public_key()
    own_id = key_id(public)
    message = pae(envelope.payload_type, envelope.payload)
    for existing in envelope.signatures:
        if existing.keyid == own_id or _verifies(public, existing.sig, message):
            raise SignatureError(f"the envelope is already signed by key {own_id}")
    signature = _signature(envelope.payload, envelope.payload_type, key)
    return Envelope(envelope.payload, envelope.payload_type, (*envelope.signatures, signature))


def _verifies(public: Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        public.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def verify(
    envelope: Envelope, trusted_keys: Sequence[Ed25519PublicKey], threshold: int = 1
) -> VerifiedEnvelope:
    """Check that at least ``threshold`` distinct trusted keys signed the envelope.

    ``threshold`` must be between 1 and the number of distinct trusted keys (ValueError
    otherwise: that is the caller's mistake, not the envelope's). Too few valid signatures
    raise SignatureError saying how many verified out of how many are needed.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for public in trusted_keys:
        keys.setdefault(key_id(public), public)
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, got {threshold}")
    if threshold > len(keys):
        raise ValueError(
            f"threshold {threshold} exceeds the {len(keys)} distinct trusted key(s)"
        )
    message = pae(envelope.payload_type, envelope.payload)
    verified: list[str] = []
    for signature in envelope.signatures:
        hint = signature.keyid
        # The keyid only decides which key is tried first.
        order = [hint] if hint in keys and hint not in verified else []
        order += [kid for kid in keys if kid != hint and kid not in verified]
        for kid in order:
            if _verifies(keys[kid], signature.sig, message):
                verified.append(kid)
                break
    if len(verified) < threshold:
        raise SignatureError(
            f"{len(verified)} of {threshold} required signature(s) verified "
            f"(the envelope has {len(envelope.signatures)} signature(s), "
            f"{len(keys)} key(s) are trusted)"
        )
    return VerifiedEnvelope(
        payload=envelope.payload, payload_type=envelope.payload_type, key_ids=tuple(verified)
    )

