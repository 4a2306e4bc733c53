"""People's own Ed25519 signing keys. Each registration and revocation is a public log
event, so every key a bundle carries chains to a logged registration."""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.core import keys as core_keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError
from deletion_audit.core.predicates import KeyRegistrationPredicate, format_timestamp
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.events import Logged
from deletion_audit.log.service import append_event
from deletion_audit.models import Agent, KeyRevocationReason, PersonStatement, User, UserKey
from deletion_audit.verdicts.recording import mark_changed


def parse_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 key from a SubjectPublicKeyInfo PEM or base64 of the raw key."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        if "PRIVATE KEY" in text:
            raise BadRequest("that is a private key: send its public half (the .pub file)")
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise BadRequest(f"public key PEM is not readable: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BadRequest("only Ed25519 public keys can be registered")
        return core_keys.raw_public(key)
    try:
        raw = b64decode(text)
    except FormatError:
        raise BadRequest("public key must be PEM or base64 of the raw 32-byte key") from None
    if len(raw) != core_keys.PUBLIC_KEY_SIZE:
        raise BadRequest(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    try:
        core_keys.public_key_from_raw(raw)
    except (FormatError, ValueError) as exc:
        raise BadRequest(f"not an Ed25519 public key: {exc}") from None
    return raw


def register_user_key(
    session: Session, *, user: User, public_key: bytes, label: str = "", now: datetime
) -> Logged[UserKey]:
    key_id = hashlib.sha256(public_key).hexdigest()
    existing = session.execute(
        select(UserKey).where(UserKey.key_id == key_id)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.user_id != user.id:
            raise Conflict(f"key {key_id} is registered to another person")
        if existing.revoked_at is not None:
            raise Conflict(f"key {key_id} was revoked; generate a new key to register")
        raise Conflict(f"key {key_id} is already registered")
    if session.execute(select(Agent.id).where(Agent.key_id == key_id)).first() is not None:
        raise Conflict(f"key {key_id} is an agent's key; people need keys of their own")
    if len(label) > 128:
        raise BadRequest("key label is at most 128 characters")
    registration = KeyRegistrationPredicate(
        key_id=key_id, public_key=b64encode(public_key), subject_type="user",
        subject_id=str(user.id), registered_at=now,
    )
    logged = append_event(session, event_type="key-registration",
                          event=registration.to_predicate(), now=now)
    row = UserKey(user_id=user.id, key_id=key_id, public_key=public_key, label=label,
                  registered_at=now, registration_leaf_hash=logged.leaf_hash)
    session.add(row)
    session.flush()
    return Logged(row=row, leaf_hash=logged.leaf_hash)


def user_keys_query(user_id: int) -> Select[UserKey]:
    return select(UserKey).where(UserKey.user_id == user_id)


def active_user_keys(session: Session, user_id: int) -> list[UserKey]:
    rows = session.execute(
        user_keys_query(user_id).where(UserKey.revoked_at.is_(None)).order_by(UserKey.id)
    ).scalars()
    return list(rows)


def revoke_user_key(
    session: Session, *, user: User, key_id: str, reason: KeyRevocationReason, now: datetime
) -> Logged[UserKey]:
    row = session.execute(
        user_keys_query(user.id).where(UserKey.key_id == key_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"you have no key {key_id}")
    if row.revoked_at is not None:
        raise Conflict(f"key {key_id} was already revoked")
    event = {
        "keyId": key_id, "subjectType": "user", "subjectId": str(user.id),
        "reason": reason.value, "revokedAt": format_timestamp(now),
    }
    logged = append_event(session, event_type="key-revocation", event=event, now=now)
    row.revoked_at = now
    row.revocation_reason = reason.value
    session.flush()
    if reason is KeyRevocationReason.COMPROMISED:
        # The verdict stops counting what this key signed: ask for new verdicts of the
        # cases it spoke in.
        for case_id in session.execute(select(PersonStatement.case_id).where(
                PersonStatement.key_id == key_id).distinct()).scalars():
            mark_changed(session, case_id=case_id, now=now)
    return Logged(row=row, leaf_hash=logged.leaf_hash)
