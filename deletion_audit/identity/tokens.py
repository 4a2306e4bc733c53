"""Personal access tokens: ``dapat_`` + 43 base62 characters (256 random bits).

The recognisable prefix lets secret scanners and people spot a leaked token. The secret is
shown once and only its SHA-256 is stored: the secret has full entropy, so a fast hash is
enough, and lookup by hash needs no per-user search. Each token also has a short public id
(``tok_…``) for listing and revoking without ever handling the secret again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from deletion_audit.errors import BadRequest, Conflict, NotFound, Unauthorized
from deletion_audit.identity.service import audit
from deletion_audit.models import AccessToken, User

TOKEN_PREFIX = "dapat_"  # noqa: S105 - the public prefix, not a secret
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_LENGTH = 43  # ceil(256 / log2(62))
TOKEN_PATTERN = re.compile(rf"^{TOKEN_PREFIX}[0-9A-Za-z]{{{_SECRET_LENGTH}}}$")
DEFAULT_DAYS = 90
MAX_DAYS = 366
# last_used_at is written at most this often per token: a busy client costs one small
# write a minute, not one per request.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: AccessToken
    secret: str
    """The full token; shown once, never stored."""


def _new_secret() -> str:
    value = int.from_bytes(secrets.token_bytes(32), "big")
    chars = []
    for _ in range(_SECRET_LENGTH):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return TOKEN_PREFIX + "".join(chars)


def hash_token(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_token(
    session: Session, *, user: User, days: int = DEFAULT_DAYS, read_only: bool = False,
    note: str = "", actor: str, now: datetime,
) -> IssuedToken:
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"a token lasts 1 to {MAX_DAYS} days, not {days}")
    if len(note) > 256:
        raise BadRequest("token note is at most 256 characters")
    if user.disabled_at is not None:
        raise Conflict(f"user {user.name!r} is disabled")
    secret = _new_secret()
    token = AccessToken(
        public_id="tok_" + secrets.token_hex(6), user_id=user.id, token_hash=hash_token(secret),
        read_only=read_only, note=note, created_at=now, expires_at=now + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    audit(session, actor=actor, action="token-created", subject=f"user:{user.id}",
          detail={"token_id": token.public_id, "read_only": read_only,
                  "expires_at": token.expires_at.isoformat()}, now=now)
    return IssuedToken(token=token, secret=secret)


def list_tokens(session: Session, *, user: User) -> Sequence[AccessToken]:
    return session.execute(
        select(AccessToken).where(AccessToken.user_id == user.id).order_by(AccessToken.id)
    ).scalars().all()


def revoke_token(session: Session, *, public_id: str, actor: str, now: datetime) -> AccessToken:
    token = session.execute(
        select(AccessToken).where(AccessToken.public_id == public_id)
    ).scalar_one_or_none()
    if token is None:
        raise NotFound(f"no token with id {public_id!r}")
    if token.revoked_at is not None:
        raise Conflict(f"token {public_id} was already revoked")
    token.revoked_at = now
    session.flush()
    audit(session, actor=actor, action="token-revoked", subject=f"user:{token.user_id}",
          detail={"token_id": public_id}, now=now)
    return token


def authenticate(
    session: Session, *, authorization: str | None, now: datetime
) -> tuple[User, AccessToken]:
    """The user and token behind an ``Authorization`` header, or Unauthorized saying why."""
    if not authorization:
        raise Unauthorized(
            f"authentication required: send 'Authorization: Bearer {TOKEN_PREFIX}...' "
            "(create a token with `deletion-audit token create USER`)"
        )
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    secret = secret.strip()
    if not TOKEN_PATTERN.fullmatch(secret):
        raise Unauthorized(f"not a personal access token (they start with {TOKEN_PREFIX})")
    row = session.execute(
        select(AccessToken, User)
        .join(User, User.id == AccessToken.user_id)
        .where(AccessToken.token_hash == hash_token(secret))
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown token")
    token, user = row
    if token.revoked_at is not None:
        raise Unauthorized(f"token {token.public_id} was revoked; create a new one")
    if now >= token.expires_at:
        raise Unauthorized(
            f"token {token.public_id} expired at {token.expires_at.isoformat()}; "
            "create a new one"
        )
    if user.disabled_at is not None:
        raise Unauthorized(f"user {user.name} is disabled")
    return user, token


def needs_touch(token: AccessToken, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL


def touch(session: Session, *, token_id: int, now: datetime) -> None:
    """Record a use; the condition makes concurrent requests write it once."""
    session.execute(
        update(AccessToken)
        .where(AccessToken.id == token_id,
               or_(AccessToken.last_used_at.is_(None),
                   AccessToken.last_used_at <= now - TOUCH_INTERVAL))
        .values(last_used_at=now)
    )
