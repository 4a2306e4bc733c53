"""Statements agents submitted: accepted ones (stored whole, as received) and refusals.

Both hold a place in the agent's chain (``seq``), and the earlier-outcome lookup reads both:
the same statement again gets its original answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime


class Attestation(Base):
    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # SHA-256 of the DSSE payload as signed.
    statement_id: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    prev: Mapped[str | None] = mapped_column(String(64))
    predicate_type: Mapped[str] = mapped_column(String(128))
    scope_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"), index=True)
    scan_id: Mapped[str | None] = mapped_column(String(256))
    part: Mapped[int | None] = mapped_column(Integer)
    challenge_id: Mapped[int | None] = mapped_column(ForeignKey("challenges.id"))
    # The envelope byte for byte as the agent sent it.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (UniqueConstraint("agent_id", "seq"),)


class Refusal(Base):
    """A statement refused after its signature verified: never evidence, but kept (with the
    answer given) so the chain stays whole and a repeat gets the same answer."""

    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    statement_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Kept whole too: two signed statements at one seq are the evidence of a fork.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (UniqueConstraint("agent_id", "statement_id"),)
