"""Closing a case: in the status change's own transaction its active agents are revoked
``decommissioned`` and its reviews not yet opened are cancelled (an unannounced one
revealed as it is cancelled), each logged as when done by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.archive import request_archive
from deletion_audit.cases.service import log_event
from deletion_audit.hosts.revocation import record_revocation
from deletion_audit.models import Agent, AgentStatus, Review, ReviewState
from deletion_audit.reviews.plan import reveal

CLOSURE_REASON = "case closed"


@dataclass
class Closure:
    decommissioned: list[str] = field(default_factory=list)
    """The agents' public ids."""
    cancelled: list[int] = field(default_factory=list)
    """The reviews' ids."""
    archive_id: int | None = None
    """The court bundle's archive, due now (exported by the tick after the commit)."""


def close_case(session: Session, *, case_id: int, by: int, now: datetime) -> Closure:
    """What closing the case does besides moving its status (called in that transaction)."""
    done = Closure()
    agents = session.execute(
        select(Agent).where(Agent.case_id == case_id,
                            Agent.status == AgentStatus.ACTIVE.value)
        .order_by(Agent.id).with_for_update()).scalars().all()
    for agent in agents:
        record_revocation(session, agent=agent, kind=AgentStatus.DECOMMISSIONED, since=None,
                          by=by, reason=CLOSURE_REASON, now=now)
        done.decommissioned.append(agent.public_id)
    pending = session.execute(
        select(Review).where(Review.case_id == case_id,
                             Review.state == ReviewState.PLANNED.value)
        .order_by(Review.id).with_for_update()).scalars().all()
    for review in pending:
        review.state = ReviewState.CANCELLED.value
        log_event(session, "review", {
            "caseId": case_id, "action": "cancelled", "reviewId": review.id,
            "kind": review.kind, "reason": CLOSURE_REASON, **reveal(review)}, now=now)
        done.cancelled.append(review.id)
    done.archive_id = request_archive(session, case_id=case_id, by=by, now=now).id
    return done
