"""The salted commitment to an unannounced review's instant.

When the review is drawn the log gets ``SHA-256(instant ‖ salt)`` (the instant as RFC 3339
UTC text, ``2026-03-01T08:00:00Z``; the salt 32 random bytes): nobody can read the instant
from it, and the service cannot change it afterwards. When the review opens the instant
and the salt are logged, and anyone recomputes the digest (:func:`verify`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from deletion_audit.core.predicates import format_timestamp

SALT_SIZE = 32


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_SIZE)


def commit(due_at: datetime, salt: bytes) -> str:
    """Hex SHA-256 of the instant's text followed by the salt."""
    return hashlib.sha256(format_timestamp(due_at).encode() + salt).hexdigest()


def verify(commitment: str, due_at: str, salt_hex: str) -> bool:
    """Whether the revealed instant (as logged) and salt open ``commitment``."""
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if len(salt) != SALT_SIZE:
        return False
    digest = hashlib.sha256(due_at.encode() + salt).hexdigest()
    return hmac.compare_digest(digest, commitment.lower())
