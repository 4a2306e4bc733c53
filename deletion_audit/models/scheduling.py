"""What the scheduler leads with and what its jobs decide: the leader's lease, the service's
own judgments (signed, logged, once per episode) and their escalation steps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime, check_in


class SchedulerLease(Base):
    """One row per lease name: whoever holds an unexpired lease runs the jobs. Expiry is on
    the transport clock (real time): a lease is about processes, not about the case."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Finding(StrEnum):
    LATE = "late"
    DARK = "dark"
    OVERDUE = "overdue"
    BREACHED = "breached"


class Judgment(Base):
    """A finding the service made on its own (domain) clock, as the statement it signed.

    ``episode`` names what the finding is about and since when (an agent's silence since
    its last heartbeat, an obligation's due instant): it is unique, so a repeated or
    concurrent tick judges each episode once whatever instance runs it."""

    __tablename__ = "judgments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    finding: Mapped[str] = mapped_column(String(16))
    episode: Mapped[str] = mapped_column(String(256), unique=True)
    # Indexed: each tick asks whether an agent's or obligation's episode is judged yet.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    obligation_id: Mapped[int | None] = mapped_column(ForeignKey("obligations.id"), index=True)
    # The instant the finding is about: the agent's last sign of life, the obligation's due.
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    judged_at: Mapped[datetime] = mapped_column(UtcDateTime())
    statement_id: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (CheckConstraint(check_in("finding", Finding), name="finding"),)


class Escalation(Base):
    """A later notification step of a judgment, due at an instant of the domain clock. It
    is sent only if the finding still stands then (the agent still silent, the obligation
    still overdue); either way it is then done."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)
