"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key id ‖ signature)>``. The signature covers the text with its
final newline. Verifiers ignore signatures by keys they do not know, but refuse the note if
a known key's signature fails: a bad signature is never "just another unknown one".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError, SignatureError
from deletion_audit.core.keys import public_key_from_raw, raw_public

ED25519_ALG = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
MAX_SIGNATURES = 100


class NoteError(FormatError):
    """A note that is malformed, or whose known signature does not verify."""


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"invalid key name {name!r}: non-empty, no spaces and no '+'")


def note_key_id(name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    """The 4-byte key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
    raw = public_key if isinstance(public_key, bytes) else raw_public(public_key)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALG]) + raw).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.key_id != note_key_id(self.name, self.public_key):
            raise NoteError(f"key id {self.key_id.hex()} does not match key {self.name!r}")

    @classmethod
    def for_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        return cls(name, note_key_id(name, public_key), public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<key id>+<key>")
        name, hex_id, encoded = parts
        _check_name(name)
        if len(hex_id) != 8 or hex_id.lower() != hex_id:
            raise NoteError("verifier key id must be 8 lowercase hex digits")
        try:
            key_id = bytes.fromhex(hex_id)
        except ValueError:
            raise NoteError("verifier key id must be 8 lowercase hex digits") from None
        try:
            material = b64decode(encoded)
        except FormatError as exc:
            raise NoteError(f"verifier key: {exc}") from None
        if len(material) != 33 or material[0] != ED25519_ALG:
            raise NoteError("verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        return cls(name, key_id, public_key_from_raw(material[1:]))

    def vkey(self) -> str:
        material = bytes([ED25519_ALG]) + raw_public(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{b64encode(material)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.for_key(self.name, self.private_key.public_key())

    def signature_line(self, text: str) -> str:
        sig = self.private_key.sign(text.encode())
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(self.verifier.key_id + sig)}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[NoteVerifier, ...] = ()


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    for c in text:
        if c != "\n" and (ord(c) < 0x20 or ord(c) == 0x7F):
            raise NoteError(f"note text contains control character U+{ord(c):04X}")


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The note with one signature line per signer."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def parse_note(note: str) -> Note:
    """Split a note into text and signatures, checking the format only."""
    if len(note) > 1_000_000:
        raise NoteError("note is too large")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("note signatures must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with '\u2014 '")
        fields = line[len(SIGNATURE_PREFIX):].split(" ")
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise NoteError(f"signature line {number} must be '\u2014 <name> <signature>'")
        name, encoded = fields
        try:
            blob = b64decode(encoded)
        except FormatError as exc:
            raise NoteError(f"signature line {number}: {exc}") from None
        if len(blob) < 5:
            raise NoteError(f"signature line {number} is too short")
        signatures.append(NoteSignature(name, blob[:4], blob[4:]))
    return Note(text, tuple(signatures))


def open_note(note: str, verifiers: NoteVerifier | list[NoteVerifier]) -> Note:
    """Parse and verify: at least one known key signed it, and no known key's signature fails.

    Raises NoteError for a malformed note and SignatureError when no known key signed it or
    a known key's signature does not verify.
    """
    known = [verifiers] if isinstance(verifiers, NoteVerifier) else list(verifiers)
    parsed = parse_note(note)
    message = parsed.text.encode()
    verified: list[NoteVerifier] = []
    for sig in parsed.signatures:
        for v in known:
            if v.name == sig.name and v.key_id == sig.key_id:
                if not v.verify(message, sig.signature):
                    raise SignatureError(f"the signature by {v.name} does not verify")
                if v not in verified:
                    verified.append(v)
    if not verified:
        names = ", ".join(v.name for v in known) or "none"
        raise SignatureError(f"the note is not signed by a known key (known: {names})")
    return Note(parsed.text, parsed.signatures, tuple(verified))
