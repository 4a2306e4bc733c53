"""Enrolled agents, the tokens that enroll them, their challenges and request nonces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class AgentStatus(StrEnum):
    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"
    COMPROMISED = "compromised"


class ChallengeOrigin(StrEnum):
    PROSECUTOR = "prosecutor"
    REVIEW = "review"
    SESSION = "session"
    AGENT = "agent"


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What agents, scans and bundles call the agent; the integer id stays internal.
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Host facts as the agent reported them (hostname, os, machine, machine_id, boot_id).
    host: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    build_digest: Mapped[str | None] = mapped_column(String(64))
    agent_version: Mapped[str | None] = mapped_column(String(64))
    enrolled_via: Mapped[int | None] = mapped_column(ForeignKey("enrollment_tokens.id"))
    # An on-site session the agent was enrolled for (sessions arrive with a later issue).
    session_id: Mapped[int | None] = mapped_column(Integer)
    heartbeat_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Revocation: ``status`` says its kind; a compromised key's statements made at or
    # after ``compromised_since`` are void.
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    compromised_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint(check_in("status", AgentStatus), name="status"),)


class EnrollmentToken(Base):
    """A one-time, expiring token; only the SHA-256 of its secret is kept."""

    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    party_role: Mapped[str] = mapped_column(String(32))
    scope_ids: Mapped[list[int]] = mapped_column(JSON)
    session_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RequestNonce(Base):
    """Nonces of signed requests seen within the replay window (shared by all instances);
    older rows are pruned."""

    __tablename__ = "request_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    nonce: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)

    __table_args__ = (UniqueConstraint("agent_id", "nonce"),)


class Challenge(Base):
    """A fresh nonce one scan of one bound scope must answer. The first part of the scan
    that answers it is judged on the domain clock and claims it for its ``scan_id``."""

    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    origin: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The on-site session that issued it (origin ``session``).
    session_id: Mapped[int | None] = mapped_column(Integer)
    used_by_scan_id: Mapped[str | None] = mapped_column(String(256))
    judged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint(check_in("origin", ChallengeOrigin), name="origin"),)


class DeletionRequest(Base):
    """A deletion the server asks the agents bound to a scope to carry out. Each such agent
    sees it as a ``delete`` task until it has scanned the scope clean since the request (or
    the request expires); an agent runs it only if its local configuration allows remote
    deletion (DESIGN: remote deletion is off unless the host's operator turns it on)."""

    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
