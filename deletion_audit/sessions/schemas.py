"""Request and response bodies of ``/api/v1/cases/{id}/sessions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEX64 = r"^[0-9a-f]{64}$"


class ParticipantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int
    notified_at: datetime | None = Field(
        default=None, description="when they were told; defaults to the opening time")


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    place: str = Field(min_length=1, max_length=512)
    planned_at: datetime
    participants: list[ParticipantCreate] = Field(min_length=1, max_length=50)
    scope_ids: list[int] = Field(min_length=1, max_length=200)
    sign_off: str = Field(default="all", max_length=64,
                          description="'all', or terms like prosecutor+2-witnesses")


class ParticipantRead(BaseModel):
    user_id: int
    role: str
    notified_at: datetime
    notice_days: float = Field(description="days between notice and the planned time")
    short_notice: bool = Field(description="told less than three days ahead")
    signed_at: datetime | None = None
    key_id: str | None = None
    refused_at: datetime | None = None
    refusal_reason: str | None = None


class SessionRead(BaseModel):
    id: int
    case_id: int
    place: str
    planned_at: datetime
    scope_ids: list[int]
    sign_off: str
    state: Literal["open", "recorded", "closed", "refused"]
    outcome: Literal["clean", "findings"] | None
    opened_at: datetime
    recorded_at: datetime | None
    record_digest: str | None
    closed_at: datetime | None
    participants: list[ParticipantRead]
    envelope: dict[str, Any] | None = Field(
        default=None, description="the record's DSSE envelope with every co-signature")
    leaf_hash: str | None = None


class SessionTokenCreate(BaseModel):
    party_id: int | None = Field(default=None, description="defaults to the caller's party")
    expires_in_hours: int = Field(default=24, ge=1, le=168)


class SessionChallengesCreate(BaseModel):
    ttl_hours: int = Field(default=4, ge=1, le=72)


class ScanResultRead(BaseModel):
    agent_id: str
    attested_by: Literal["examiner", "company"]
    agent_build_digest: str | None
    scan_id: str
    challenge_id: int
    coverage: str | None
    objects: int
    items_present: int
    finished_at: datetime


class ScopeResultRead(BaseModel):
    scope_id: int
    items_present: int
    found_by_examiner_only: int
    found_by_company_only: int
    scans: list[ScanResultRead]


class ResultsRead(BaseModel):
    session_id: int
    scopes: list[ScopeResultRead]


class EnvironmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str | None = Field(default=None, max_length=256)
    machine_id: str | None = Field(default=None, max_length=256)
    volume_ids: list[str] = Field(default_factory=list, max_length=64)
    note: str = Field(default="", max_length=4096)


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: EnvironmentCreate
    remarks: str = Field(default="", max_length=8192)


class RecordRead(BaseModel):
    session_id: int
    payload_type: str
    payload: str = Field(description="standard base64 of the exact bytes to sign")
    digest: str = Field(description="SHA-256 of the payload: the record's statement id")
    summary_zh: str
    summary_en: str
    state: str
    leaf_hash: str | None = None


class CoSignatureCreate(BaseModel):
    """A typed co-signature: ``dsse`` is an Ed25519 signature over the record's DSSE PAE."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["dsse"]
    keyid: str = Field(pattern=HEX64)
    sig: str = Field(min_length=1, max_length=256, description="standard base64")
    payload_sha256: str | None = Field(
        default=None, pattern=HEX64,
        description="digest of the record the signer read; a mismatch is refused precisely")


class CoSignatureRead(BaseModel):
    session_id: int
    key_id: str
    signed_at: datetime
    state: str
    outcome: str | None
    leaf_hash: str


class RefusalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)


class ItemsRead(BaseModel):
    session_id: int
    salt: str
    lists: dict[str, Any]
