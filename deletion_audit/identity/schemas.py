"""Request and response bodies of the people API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from deletion_audit.models import KeyRevocationReason


class MeRead(BaseModel):
    id: int
    name: str
    display_name: str
    organisation: str
    organisation_kind: str
    token_id: str
    read_only: bool


class UserKeyCreate(BaseModel):
    public_key: str = Field(
        min_length=1, max_length=4096,
        description="SubjectPublicKeyInfo PEM (the .pub of `deletion-audit keygen`) or "
        "standard base64 of the raw 32-byte Ed25519 key",
    )
    label: str = Field(default="", max_length=128)


class UserKeyRead(BaseModel):
    key_id: str
    public_key: str
    label: str
    registered_at: datetime
    registration_leaf_hash: str
    revoked_at: datetime | None
    revocation_reason: KeyRevocationReason | None
    leaf_hash: str | None = Field(
        default=None, description="the log leaf of this write (write responses only)"
    )
