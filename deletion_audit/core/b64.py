"""Base64 as the formats we read use it: emit standard and padded, read both alphabets.

DSSE (envelope.md, "Base64") lets a producer use the standard or the URL-safe alphabet,
with or without padding, so a reader must accept all four. Python's own decoder is the wrong
tool on its own: without ``validate=True`` it silently drops characters outside the alphabet,
and even with it, it accepts non-zero trailing bits. Either would let two different strings
mean the same bytes, so this decoder refuses both.
"""

from __future__ import annotations

import base64
import binascii

from deletion_audit.core.errors import FormatError

_ALPHABETS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def b64encode(data: bytes) -> str:
    """Standard alphabet, padded (RFC 4648 §4): what every DSSE reader accepts."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; anything else is a FormatError.

    Refused: characters outside the alphabet (including whitespace), a mix of both
    alphabets, wrong padding, an impossible length, and non-zero trailing bits.
    """
    if not isinstance(text, str):
        raise FormatError(f"base64 must be a string, got {type(text).__name__}")
    # Byte-wise tests that run in C at memory speed, not regular expressions: a DSSE payload
    # of 10,000 digests is over a megabyte of base64. Deleting the alphabet must leave at
    # most two "=", and only at the end.
    raw = text.encode("ascii") if text.isascii() else b"\x80"
    rest = raw.translate(None, _ALPHABETS)
    if rest not in (b"", b"=", b"==") or not raw.endswith(rest):
        raise FormatError("base64 contains characters outside the alphabet")
    urlsafe = b"-" in raw or b"_" in raw
    if urlsafe and (b"+" in raw or b"/" in raw):
        raise FormatError("base64 mixes the standard and URL-safe alphabets")
    padding = len(rest)
    body = raw[:len(raw) - padding]
    if len(body) % 4 == 1:
        raise FormatError(f"base64 has an impossible length ({len(body)} characters)")
    expected_padding = -len(body) % 4
    if padding and padding != expected_padding:
        raise FormatError("base64 has wrong padding")
    standard = (body.translate(_TO_STANDARD) if urlsafe else body) + b"=" * expected_padding
    try:
        data = binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error as exc:  # unreachable after the checks above; kept as a guard
        raise FormatError(f"invalid base64: {exc}") from None
    # A canonical encoding has zero trailing bits: only the last quantum can have any, so
    # re-encoding its bytes is an exact check.
    if expected_padding and binascii.b2a_base64(
            data[len(data) - 3 + expected_padding:], newline=False) != standard[-4:]:
        raise FormatError("base64 has non-zero trailing bits (not a canonical encoding)")
    return data
