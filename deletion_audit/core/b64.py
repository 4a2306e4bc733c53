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
import re

from deletion_audit.core.errors import FormatError

_SHAPE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_TO_STANDARD = str.maketrans("-_", "+/")


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
    if not _SHAPE.fullmatch(text):
        raise FormatError("base64 contains characters outside the alphabet")
    # Substring tests, not regular expressions: a DSSE payload of 10,000 digests is over a
    # megabyte of base64, and ``in`` scans it in C at memory speed.
    urlsafe = "-" in text or "_" in text
    if urlsafe and ("+" in text or "/" in text):
        raise FormatError("base64 mixes the standard and URL-safe alphabets")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1:
        raise FormatError(f"base64 has an impossible length ({len(body)} characters)")
    expected_padding = -len(body) % 4
    if padding and padding != expected_padding:
        raise FormatError("base64 has wrong padding")
    standard = (body.translate(_TO_STANDARD) if urlsafe else body) + "=" * expected_padding
    try:
        data = base64.b64decode(standard, validate=True)
    except binascii.Error as exc:  # unreachable after the checks above; kept as a guard
        raise FormatError(f"invalid base64: {exc}") from None
    # A canonical encoding has zero trailing bits; re-encoding is the simplest exact check.
    if base64.b64encode(data).decode("ascii") != standard:
        raise FormatError("base64 has non-zero trailing bits (not a canonical encoding)")
    return data
