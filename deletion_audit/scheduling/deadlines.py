"""Obligation deadlines on the domain clock. An obligation is overdue when its derived due
instant has passed and it is neither fulfilled nor waived — exactly what the verdict says
(verdicts/engine.py), so the judgment follows the signed verdict version computed at or
after the due instant (the verdict job computes one for every case an obligation of which
fell due) instead of judging fulfilment a second way. The state column is not changed:
overdue is derived from the rule and the clock, and the replay of a case derives it the
same way."""

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
    ObligationState,
    Verdict,
)
from deletion_audit.verdicts.service import latest_verdict


@dataclass(frozen=True)
class Overdue:
    obligation_id: int
    case_id: int
    due_at: datetime

    @property
    def episode(self) -> str:
        return f"overdue:obligation:{self.obligation_id}:{format_timestamp(self.due_at)}"


def overdue_in(verdict: Verdict | None, obligation_id: int) -> bool:
    if verdict is None:
        return False
    return any(o.get("id") == obligation_id and o.get("overdue")
               for o in verdict.report.get("obligations", []))


def due_overdue(session: Session, *, now: datetime) -> list[Overdue]:
    """Obligations whose overdue finding is due at ``now`` and not yet judged."""
    judged = (select(Judgment.id).where(
        Judgment.obligation_id == Obligation.id, Judgment.finding == Finding.OVERDUE.value,
        Judgment.since == Obligation.due_at).exists())
    rows = session.execute(
        select(Obligation.id, Obligation.case_id, Obligation.due_at)
        .join(Case, Case.id == Obligation.case_id)
        .where(Obligation.due_at.is_not(None), Obligation.due_at <= now,
               Obligation.state != ObligationState.WAIVED.value,
               Case.status != CaseStatus.CLOSED.value, ~judged)
        .order_by(Obligation.id)).all()
    candidates = [Overdue(oid, cid, due) for oid, cid, due in rows if due is not None]
    out = []
    verdicts: dict[int, Verdict | None] = {}
    for c in candidates:
        if c.case_id not in verdicts:
            verdicts[c.case_id] = latest_verdict(session, case_id=c.case_id)
        verdict = verdicts[c.case_id]
        # A verdict computed before the due instant cannot tell: the next tick will.
        if verdict is not None and verdict.as_of >= c.due_at and overdue_in(
                verdict, c.obligation_id):
            out.append(c)
    return out


def still_overdue(session: Session, obligation: Obligation) -> bool:
    if obligation.state == ObligationState.WAIVED.value:
        return False
    return overdue_in(latest_verdict(session, case_id=obligation.case_id), obligation.id)


def obligation_context(obligation: Obligation) -> dict[str, object]:
    return {"obligation": obligation.title}


def detail(obligation: Obligation) -> str:
    provisional = " (provisional: beyond published holiday data)" \
        if obligation.due_provisional else ""
    assert obligation.due_at is not None  # noqa: S101 - only due obligations are judged
    return f"{obligation.kind} due {format_timestamp(obligation.due_at)}{provisional}"
