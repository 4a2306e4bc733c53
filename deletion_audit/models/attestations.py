"""Signed statements submitted to ``POST /api/v1/attestations``: accepted ones (stored
whole, as received) and refusals.

An agent's statements hold a place in its chain (``seq``), and the earlier-outcome lookup
reads both tables: the same statement again gets its original answer. A person's statements
(vendor, custody, deidentify) have no chain: their rows name the person and the registered
key that signed instead of an agent, and :class:`PersonStatement` says what each concerns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime

# Exactly one signer: an agent (its chain) or a person (with the key that signed).
_ONE_SIGNER = "(agent_id IS NULL) <> (user_id IS NULL)"


class Attestation(Base):
    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # SHA-256 of the DSSE payload as signed.
    statement_id: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    user_key_id: Mapped[int | None] = mapped_column(ForeignKey("user_keys.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # An agent's place in its chain; people's statements have none.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev: Mapped[str | None] = mapped_column(String(64))
    predicate_type: Mapped[str] = mapped_column(String(128))
    scope_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"), index=True)
    scan_id: Mapped[str | None] = mapped_column(String(256))
    part: Mapped[int | None] = mapped_column(Integer)
    challenge_id: Mapped[int | None] = mapped_column(ForeignKey("challenges.id"))
    # The envelope byte for byte as it was sent.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        UniqueConstraint("agent_id", "seq"),
        CheckConstraint(_ONE_SIGNER, name="one_signer"),
        CheckConstraint("agent_id IS NULL OR seq IS NOT NULL", name="agent_seq"),
    )


class Refusal(Base):
    """A statement refused after its submitter was authenticated: never evidence, but kept
    (with the answer given) so the chain stays whole and a repeat gets the same answer.

    ``case_id`` is empty for a person's statement naming a case the person is not a member
    of: a refusal is never attributed to a case its submitter cannot see."""

    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    statement_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Kept whole too: two signed statements at one seq are the evidence of a fork.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        UniqueConstraint("agent_id", "statement_id"),
        UniqueConstraint("user_id", "statement_id"),
        CheckConstraint(_ONE_SIGNER, name="one_signer"),
    )


class PersonStatement(Base):
    """What an accepted statement of a person concerns, as ingest judged it: who signed
    for which party, and the data flow or obligation it speaks about. Everything here is
    in the statement's logged ``attestation`` event too, so a replay rebuilds it."""

    __tablename__ = "person_statements"

    attestation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("attestations.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key_id: Mapped[str] = mapped_column(String(64))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    predicate_type: Mapped[str] = mapped_column(String(128))
    data_flow_id: Mapped[int | None] = mapped_column(ForeignKey("data_flows.id"), index=True)
    obligation_id: Mapped[int | None] = mapped_column(ForeignKey("obligations.id"), index=True)
    # vendor: deleted | not-received | retained-under-custody; custody: sealed | destroyed |
    # sanitised; deidentify: pass | fail.
    outcome: Mapped[str] = mapped_column(String(32))
    # When the signer says it was so (statedAt, occurredAt, checkedAt).
    stated_at: Mapped[datetime] = mapped_column(UtcDateTime())
