"""A case's review plan and the reviews it schedules.

Announced reviews fall at offsets (days) after the case's first ``verified`` verdict —
+30, +90 and +180 by default — and are logged with their instant. Unannounced ones are
drawn uniformly (to the second) inside the window the prosecutor sets, in days after the
same anchor, and logged as a salted commitment only (reviews/commitment.py). Every plan
edit is a logged event; an edit after anchoring cancels the reviews not yet opened (an
unannounced one is revealed as it is cancelled, so none can be quietly dropped or moved)
and schedules the new plan's reviews still ahead."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import Unprocessable
from deletion_audit.models import (
    Case,
    CaseStatus,
    Review,
    ReviewKind,
    ReviewPlan,
    ReviewState,
    Verdict,
)
from deletion_audit.reviews import commitment

DEFAULT_OFFSETS_DAYS = (30, 90, 180)
DEFAULT_RESPONSE_HOURS = 72
MAX_DAYS = 3650
MAX_REVIEWS = 24


@dataclass(frozen=True)
class PlanSpec:
    offsets_days: Sequence[int] = DEFAULT_OFFSETS_DAYS
    unannounced_count: int = 0
    window_from_days: int = 0
    window_to_days: int = 0
    response_hours: int = DEFAULT_RESPONSE_HOURS

    def check(self) -> None:
        offsets = list(self.offsets_days)
        if any(not 1 <= d <= MAX_DAYS for d in offsets):
            raise Unprocessable(f"offsets_days must each be 1-{MAX_DAYS}")
        if len(set(offsets)) != len(offsets):
            raise Unprocessable("offsets_days must not repeat a day")
        if not 0 <= self.unannounced_count <= MAX_REVIEWS - len(offsets):
            raise Unprocessable(f"at most {MAX_REVIEWS} reviews in a plan")
        if self.unannounced_count and not (
                1 <= self.window_from_days < self.window_to_days <= MAX_DAYS):
            raise Unprocessable("unannounced reviews need a window: 1 <= window_from_days < "
                                f"window_to_days <= {MAX_DAYS}")
        if not 1 <= self.response_hours <= 24 * 30:
            raise Unprocessable("response_hours must be 1-720")


def spec_of(plan: ReviewPlan | None) -> PlanSpec:
    if plan is None:
        return PlanSpec()
    return PlanSpec(offsets_days=tuple(plan.offsets_days),
                    unannounced_count=plan.unannounced_count,
                    window_from_days=plan.window_from_days,
                    window_to_days=plan.window_to_days, response_hours=plan.response_hours)


def _plan_event(case_id: int, spec: PlanSpec, by: int | None) -> dict[str, object]:
    return {"caseId": case_id, "action": "plan", "offsetsDays": list(spec.offsets_days),
            "unannounced": {"count": spec.unannounced_count,
                            "windowFromDays": spec.window_from_days,
                            "windowToDays": spec.window_to_days},
            "responseHours": spec.response_hours, "by": by}


def first_verified(session: Session, case_id: int) -> datetime | None:
    value: datetime | None = session.execute(select(func.min(Verdict.as_of)).where(
        Verdict.case_id == case_id, Verdict.outcome == "verified")).scalar_one()
    return value


def _draw(start: datetime, end: datetime) -> datetime:
    """An instant uniformly in [start, end), to the second."""
    span = max(int((end - start).total_seconds()), 1)
    return (start + timedelta(seconds=secrets.randbelow(span))).replace(microsecond=0)


def _schedule(session: Session, *, case_id: int, spec: PlanSpec, anchor: datetime,
              not_before: datetime | None, by: int | None, now: datetime) -> list[Review]:
    out = []
    for days in sorted(spec.offsets_days):
        due = anchor + timedelta(days=days)
        if not_before is not None and due <= not_before:
            continue
        row = Review(case_id=case_id, kind=ReviewKind.ANNOUNCED.value,
                     state=ReviewState.PLANNED.value, due_at=due,
                     response_hours=spec.response_hours, created_at=now, created_by=by)
        session.add(row)
        session.flush()
        log_event(session, "review", {
            "caseId": case_id, "action": "scheduled", "reviewId": row.id,
            "kind": row.kind, "dueAt": format_timestamp(due)}, now=now)
        out.append(row)
    start = anchor + timedelta(days=spec.window_from_days)
    end = anchor + timedelta(days=spec.window_to_days)
    if not_before is not None:
        start = max(start, not_before)
    for _ in range(spec.unannounced_count if start < end else 0):
        due = _draw(start, end)
        salt = commitment.new_salt()
        row = Review(case_id=case_id, kind=ReviewKind.UNANNOUNCED.value,
                     state=ReviewState.PLANNED.value, due_at=due,
                     commitment=commitment.commit(due, salt), salt=salt,
                     response_hours=spec.response_hours, created_at=now, created_by=by)
        session.add(row)
        session.flush()
        log_event(session, "review", {
            "caseId": case_id, "action": "committed", "reviewId": row.id,
            "kind": row.kind, "commitment": row.commitment}, now=now)
        out.append(row)
    return out


def reveal(review: Review) -> dict[str, object]:
    """What opening (or cancelling) an unannounced review discloses."""
    if review.kind != ReviewKind.UNANNOUNCED.value or review.salt is None:
        return {}
    return {"dueAt": format_timestamp(review.due_at), "salt": review.salt.hex(),
            "commitment": review.commitment}


def set_plan(session: Session, *, case: Case, spec: PlanSpec, by: int | None,
             now: datetime) -> ReviewPlan:
    """Store and log the case's plan; if it is anchored already, re-plan what lies ahead."""
    spec.check()
    if case.status == CaseStatus.CLOSED.value:
        raise Unprocessable("the case is closed: it has no reviews ahead")
    plan = session.get(ReviewPlan, case.id, with_for_update=True)
    if plan is None:
        plan = ReviewPlan(case_id=case.id, anchored_at=None)
        session.add(plan)
    plan.offsets_days = list(spec.offsets_days)
    plan.unannounced_count = spec.unannounced_count
    plan.window_from_days, plan.window_to_days = spec.window_from_days, spec.window_to_days
    plan.response_hours, plan.updated_at = spec.response_hours, now
    session.flush()
    log_event(session, "review", _plan_event(case.id, spec, by), now=now)
    if plan.anchored_at is not None:
        pending = session.execute(select(Review).where(
            Review.case_id == case.id, Review.state == ReviewState.PLANNED.value,
            Review.kind != ReviewKind.ON_DEMAND.value).with_for_update()).scalars().all()
        for row in pending:
            row.state = ReviewState.CANCELLED.value
            log_event(session, "review", {
                "caseId": case.id, "action": "cancelled", "reviewId": row.id,
                "kind": row.kind, "reason": "plan changed", **reveal(row)}, now=now)
        _schedule(session, case_id=case.id, spec=spec, anchor=plan.anchored_at,
                  not_before=now, by=by, now=now)
    return plan


def cases_to_anchor(session: Session) -> list[int]:
    """Open cases with a ``verified`` verdict and no anchored plan yet."""
    anchored = select(ReviewPlan.case_id).where(ReviewPlan.anchored_at.is_not(None))
    verified = select(Verdict.case_id).where(Verdict.outcome == "verified")
    return list(session.execute(
        select(Case.id).where(Case.id.in_(verified), Case.id.not_in(anchored),
                              Case.status != CaseStatus.CLOSED.value)
        .order_by(Case.id)).scalars())


def anchor(session: Session, *, case_id: int, now: datetime) -> list[Review]:
    """Anchor the case's plan (the default plan if it has none) at its first verified
    verdict and schedule its reviews; nothing if already anchored."""
    at = first_verified(session, case_id)
    if at is None:
        return []
    plan = session.get(ReviewPlan, case_id, with_for_update=True)
    if plan is None:
        spec = PlanSpec()
        plan = ReviewPlan(case_id=case_id, offsets_days=list(spec.offsets_days),
                          unannounced_count=0, window_from_days=0, window_to_days=0,
                          response_hours=spec.response_hours, updated_at=now)
        session.add(plan)
        session.flush()
        log_event(session, "review", _plan_event(case_id, spec, None), now=now)
    if plan.anchored_at is not None:
        return []
    plan.anchored_at = at
    session.flush()
    return _schedule(session, case_id=case_id, spec=spec_of(plan), anchor=at,
                     not_before=None, by=None, now=now)
