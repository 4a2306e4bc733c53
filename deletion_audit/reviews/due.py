"""The reviews' part of ``tick(now)``: anchor plans of newly verified cases, open the
reviews due, close those whose window ended. Each effect is its own transaction, taken
with the review (or plan) row locked and its state checked again, so a late tick catches
up, a repeated one does nothing twice, and two instances do each effect once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from deletion_audit.db import Database
from deletion_audit.models import Case, CaseStatus, Review, ReviewState
from deletion_audit.reviews import life, plan

log = logging.getLogger(__name__)


@dataclass
class ReviewsReport:
    anchored: list[int] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


def _due(db: Database, state: ReviewState, now: datetime) -> list[int]:
    column = Review.due_at if state is ReviewState.PLANNED else Review.closes_at
    with db.read() as session:
        return list(session.execute(
            select(Review.id).join(Case, Case.id == Review.case_id)
            .where(Review.state == state.value, column <= now,
                   Case.status != CaseStatus.CLOSED.value)
            .order_by(column, Review.id)).scalars())


def _step(db: Database, review_id: int, state: ReviewState, *,
          service_key: Ed25519PrivateKey, now: datetime) -> bool:
    with db.write() as session:
        review = session.get(Review, review_id, with_for_update=True)
        if review is None or review.state != state.value:
            return False  # done by another instance meanwhile
        if state is ReviewState.PLANNED:
            life.open_review(session, review, now=now)
        else:
            life.close_review(session, review, service_key=service_key, now=now)
    return True


def run(db: Database, *, service_key: Ed25519PrivateKey, now: datetime) -> ReviewsReport:
    report = ReviewsReport()
    with db.read() as session:
        to_anchor = plan.cases_to_anchor(session)
    for case_id in to_anchor:
        try:
            with db.write() as session:
                if plan.anchor(session, case_id=case_id, now=now):
                    report.anchored.append(case_id)
        except IntegrityError:
            log.info("plan anchored concurrently", extra={"case_id": case_id})
    # Close first: a review whose window ended is judged before a later one opens.
    for state, done in ((ReviewState.OPEN, report.closed),
                        (ReviewState.PLANNED, report.opened)):
        for review_id in _due(db, state, now):
            if _step(db, review_id, state, service_key=service_key, now=now):
                done.append(review_id)
    return report
