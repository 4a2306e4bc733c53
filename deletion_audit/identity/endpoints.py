"""``/api/v1/users/me``: who I am, and my signing keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from deletion_audit.core.b64 import b64encode
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.identity import keys
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.identity.schemas import MeRead, UserKeyCreate, UserKeyRead
from deletion_audit.models import KeyRevocationReason, Organisation, User, UserKey
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/users/me", tags=["people"])


def key_read(row: UserKey, leaf_hash: bytes | None = None) -> UserKeyRead:
    return UserKeyRead(
        key_id=row.key_id, public_key=b64encode(row.public_key), label=row.label,
        registered_at=row.registered_at,
        registration_leaf_hash=row.registration_leaf_hash.hex(), revoked_at=row.revoked_at,
        revocation_reason=(KeyRevocationReason(row.revocation_reason)
                           if row.revocation_reason else None),
        leaf_hash=leaf_hash.hex() if leaf_hash else None,
    )


@router.get("", response_model=MeRead, **bearer())
def get_me(caller: CurrentUser, session: DbRead) -> MeRead:
    org = session.get_one(Organisation, caller.organisation_id)
    return MeRead(id=caller.user_id, name=caller.name, display_name=caller.display_name,
                  organisation=org.name, organisation_kind=org.kind, token_id=caller.token_id,
                  read_only=caller.read_only)


@router.post("/keys", status_code=201, response_model=UserKeyRead, **bearer(400, 409))
def register_key(
    body: UserKeyCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> UserKeyRead:
    """Register one of my Ed25519 signing keys; logged as a public key-registration."""
    raw = keys.parse_public_key(body.public_key)
    user = session.get_one(User, caller.user_id)
    logged = keys.register_user_key(session, user=user, public_key=raw, label=body.label,
                                    now=ctx.clock.now())
    return key_read(logged.row, logged.leaf_hash)


@router.get("/keys", response_model=Page[UserKeyRead], **bearer(400))
def list_keys(caller: CurrentUser, session: DbRead, page: PageParams) -> Page[UserKeyRead]:
    rows, cursor = paginate(session, keys.user_keys_query(caller.user_id), key=UserKey.id,
                            page=page, list_name="user-keys")
    return Page(items=[key_read(r) for r in rows], next_cursor=cursor)


@router.delete("/keys/{key_id}", response_model=UserKeyRead, **bearer(404, 409))
def revoke_key(
    key_id: str, caller: CurrentUser, session: DbWrite, ctx: Context,
    reason: Annotated[KeyRevocationReason, Query()] = KeyRevocationReason.RETIRED,
) -> UserKeyRead:
    """Revoke one of my keys; logged as a public key-revocation with a reason code."""
    user = session.get_one(User, caller.user_id)
    logged = keys.revoke_user_key(session, user=user, key_id=key_id, reason=reason,
                                  now=ctx.clock.now())
    return key_read(logged.row, logged.leaf_hash)
