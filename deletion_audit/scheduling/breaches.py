"""Breached obligations judged on the domain clock. A breach the service found itself (a
scan's age summary beyond a retention rule, cases/retention.py) or a person's statement
moved an obligation to ``breached`` with a logged event; ``tick(now)`` signs that finding
with the service key as a judgment, once per breach (the episode names the obligation and
the instant it became breached), and escalates it while the obligation stays breached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.core.predicates import format_timestamp
from deletion_audit.models import (
    Case,
    CaseStatus,
    Finding,
    Judgment,
    Obligation,
    ObligationKind,
    ObligationState,
)

JUDGED_KINDS = (ObligationKind.RETENTION.value, ObligationKind.CUSTODY_UNTIL.value)


@dataclass(frozen=True)
class Breach:
    obligation_id: int
    since: datetime

    @property
    def episode(self) -> str:
        return f"breached:obligation:{self.obligation_id}:{format_timestamp(self.since)}"


def due_breaches(session: Session) -> list[Breach]:
    """Breached obligations whose current breach is not judged yet."""
    judged = (select(Judgment.id).where(
        Judgment.obligation_id == Obligation.id, Judgment.finding == Finding.BREACHED.value,
        Judgment.since == Obligation.state_changed_at).exists())
    rows = session.execute(
        select(Obligation.id, Obligation.state_changed_at)
        .join(Case, Case.id == Obligation.case_id)
        .where(Obligation.state == ObligationState.BREACHED.value,
               Obligation.kind.in_(JUDGED_KINDS),
               Case.status != CaseStatus.CLOSED.value, ~judged)
        .order_by(Obligation.id)).all()
    return [Breach(oid, since) for oid, since in rows]


def still_breached(obligation: Obligation, since: datetime) -> bool:
    return (obligation.state == ObligationState.BREACHED.value
            and obligation.state_changed_at == since)


def detail(obligation: Obligation) -> str:
    return f"{obligation.kind} breached {format_timestamp(obligation.state_changed_at)}"


def obligation_context(obligation: Obligation) -> dict[str, object]:
    return {"obligation": obligation.title, "detail": detail(obligation)}
