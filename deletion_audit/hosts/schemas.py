"""Request and response bodies of the agent API and the case's agent endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from deletion_audit.models import AgentStatus, ChallengeOrigin, ScopeKind

HEX64 = r"^[0-9a-f]{64}$"


class EnrollmentTokenCreate(BaseModel):
    party_id: int | None = Field(default=None, description="defaults to the caller's party")
    scope_ids: list[int] = Field(default_factory=list, max_length=200)
    session_id: int | None = None
    expires_in_hours: int = Field(default=24, ge=1, le=168)


class EnrollmentTokenRead(BaseModel):
    id: int
    token: str = Field(description="<secret>.<log key fingerprint>; shown once")
    expires_at: datetime
    case_id: int
    party_id: int
    party_role: str
    scope_ids: list[int]


class HostFacts(BaseModel):
    hostname: str = Field(max_length=256)
    os: str = Field(max_length=256)
    machine: str = Field(max_length=64)
    machine_id: str | None = Field(default=None, max_length=256)
    boot_id: str | None = Field(default=None, max_length=256)


class EnrollRequest(BaseModel):
    token: str = Field(min_length=1, max_length=256)
    public_key: str = Field(description="standard base64 of the raw 32-byte Ed25519 key",
                            max_length=64)
    host: HostFacts
    build_digest: str = Field(pattern=HEX64)
    agent_version: str = Field(min_length=1, max_length=64)


class ManifestRef(BaseModel):
    id: int
    root: str
    count: int


class AgentScope(BaseModel):
    id: int
    name: str
    kind: ScopeKind
    spec: dict[str, Any]
    spec_digest: str
    expects_data: bool
    location_codes: list[str]
    manifest: ManifestRef | None
    timestamp_field: str | None = None
    ages: bool = False
    """A retention rule covers the scope: its scans carry an age summary per kind."""


class EnrollRead(BaseModel):
    agent_id: str
    case_id: int
    party_id: int
    party_role: str
    scopes: list[AgentScope]
    heartbeat_seconds: int
    server_time: datetime
    checkpoint: str | None


class HeartbeatRequest(BaseModel):
    outbox: int = Field(ge=0)
    dead_letters: int = Field(ge=0)
    last_checkpoint_size: int | None = Field(default=None, ge=0)


class HeartbeatRead(BaseModel):
    server_time: datetime
    heartbeat_seconds: int
    tasks: int
    checkpoint: str | None


class ScopesRead(BaseModel):
    scopes: list[AgentScope]


class ChallengeRead(BaseModel):
    id: int
    scope_id: int
    nonce: str
    expires_at: datetime
    origin: ChallengeOrigin


class ChallengesRead(BaseModel):
    challenges: list[ChallengeRead]


class ChallengeCreate(BaseModel):
    scope_id: int


class CaseChallengesCreate(BaseModel):
    scope_ids: list[int] | None = Field(
        default=None, description="scopes to challenge; all of the case's when omitted")
    ttl_hours: int = Field(default=72, ge=1, le=720, description="time to answer")


class IssuedChallengeRead(BaseModel):
    """A challenge as its issuer sees it: the nonce goes to the agent only."""

    id: int
    agent_id: str
    scope_id: int
    expires_at: datetime
    origin: ChallengeOrigin


class IssuedChallengesRead(BaseModel):
    challenges: list[IssuedChallengeRead]


class TaskRead(BaseModel):
    id: str
    kind: Literal["scan", "delete"]
    scope_id: int
    challenge: ChallengeRead | None


class TasksRead(BaseModel):
    tasks: list[TaskRead]


class RevokeRequest(BaseModel):
    kind: Literal["decommissioned", "compromised"]
    since: datetime | None = Field(
        default=None, description="compromised only: statements made at or after it are "
        "void (defaults to now)")
    reason: str = Field(min_length=1, max_length=2000)


class AgentRead(BaseModel):
    agent_id: str
    party_id: int
    key_id: str
    status: AgentStatus
    enrolled_at: datetime
    last_seen_at: datetime | None
    heartbeat_seconds: int
    agent_version: str | None
    revoked_at: datetime | None
    compromised_since: datetime | None
    scope_ids: list[int] = Field(description="live bindings")
    leaf_hash: str | None = None


class ReceiptRead(BaseModel):
    statement_id: str
    leaf_hash: str
    seq: int
    received_at: datetime


class DeletionRequestCreate(BaseModel):
    scope_id: int
    reason: str | None = Field(default=None, max_length=2000,
                               description="why, for the record and the host's operator")
    ttl_hours: int = Field(default=168, ge=1, le=720,
                           description="how long the agents have to carry it out")


class DeletionTaskState(BaseModel):
    agent_id: str
    state: Literal["open", "done", "expired"] = Field(
        description="done: the agent has scanned the scope clean since the request")


class DeletionRequestRead(BaseModel):
    id: int
    scope_id: int
    reason: str | None
    created_at: datetime
    expires_at: datetime
    agents: list[DeletionTaskState]
    leaf_hash: str
