"""Follow-up reviews over HTTP: ``GET /api/v1/cases/{id}/reviews`` (keyset pages), ``POST``
to start one now (the prosecutor), and the case's plan (``GET``/``PUT .../reviews/plan``).

An unannounced review that has not opened shows its commitment and nothing of its instant;
once open it shows the instant and the salt, so anyone can check them against the logged
commitment."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Review, ReviewKind, ReviewPlan, ReviewState
from deletion_audit.pagination import Page, PageParams, paginate
from deletion_audit.reviews import life, plan

router = APIRouter(prefix="/api/v1/cases/{case_id}/reviews", tags=["reviews"])


class ReviewRead(BaseModel):
    id: int
    kind: ReviewKind
    state: ReviewState
    due_at: datetime | None
    """None for an unannounced review not yet opened: only its commitment is known."""
    commitment: str | None
    salt: str | None
    """Hex; shown once the unannounced review opened (or was cancelled)."""
    response_hours: int
    opened_at: datetime | None
    closes_at: datetime | None
    challenges: int
    closed_at: datetime | None
    outcome: str | None
    findings: list[dict[str, Any]] | None
    statement_id: str | None
    envelope: str | None
    """The signed outcome's DSSE envelope JSON, base64."""
    leaf_hash: str | None


def review_read(row: Review) -> ReviewRead:
    hidden = row.kind == ReviewKind.UNANNOUNCED.value and row.state == ReviewState.PLANNED.value
    return ReviewRead(
        id=row.id, kind=ReviewKind(row.kind), state=ReviewState(row.state),
        due_at=None if hidden else row.due_at, commitment=row.commitment,
        salt=None if hidden or row.salt is None else row.salt.hex(),
        response_hours=row.response_hours, opened_at=row.opened_at, closes_at=row.closes_at,
        challenges=len(row.challenge_ids or []), closed_at=row.closed_at, outcome=row.outcome,
        findings=row.findings, statement_id=row.statement_id,
        envelope=base64.b64encode(row.envelope).decode() if row.envelope else None,
        leaf_hash=row.leaf_hash.hex() if row.leaf_hash else None)


class UnannouncedPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=0, ge=0, le=plan.MAX_REVIEWS)
    window_from_days: int = Field(default=0, ge=0, le=plan.MAX_DAYS,
                                  description="window start, days after the anchor")
    window_to_days: int = Field(default=0, ge=0, le=plan.MAX_DAYS,
                                description="window end, days after the anchor")


class PlanWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offsets_days: list[int] = Field(
        default=list(plan.DEFAULT_OFFSETS_DAYS), max_length=plan.MAX_REVIEWS,
        description="announced reviews, days after the case's first verified verdict")
    unannounced: UnannouncedPlan = Field(default_factory=UnannouncedPlan)
    response_hours: int = Field(default=plan.DEFAULT_RESPONSE_HOURS, ge=1, le=720)


class PlanRead(PlanWrite):
    anchored_at: datetime | None
    """The case's first verified verdict: reviews are scheduled from it."""


def _plan_read(row: ReviewPlan | None) -> PlanRead:
    spec = plan.spec_of(row)
    return PlanRead(offsets_days=list(spec.offsets_days), unannounced=UnannouncedPlan(
        count=spec.unannounced_count, window_from_days=spec.window_from_days,
        window_to_days=spec.window_to_days), response_hours=spec.response_hours,
        anchored_at=row.anchored_at if row is not None else None)


@router.get("", response_model=Page[ReviewRead], **bearer(400, 404))
def list_reviews(case_id: int, caller: CurrentUser, session: DbRead,
                 page: PageParams) -> Page[ReviewRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_JUDGMENTS)
    rows, cursor = paginate(session, select(Review).where(Review.case_id == case_id),
                            key=Review.id, page=page, list_name="reviews")
    return Page(items=[review_read(r) for r in rows], next_cursor=cursor)


@router.post("", status_code=201, response_model=ReviewRead, **bearer(404, 409))
def start_review(case_id: int, caller: CurrentUser, session: DbWrite,
                 ctx: Context) -> ReviewRead:
    """Start a review now: a fresh challenge to every active agent's bound scope, and the
    plan's response window (72 h unless the plan says otherwise)."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.START_REVIEWS)
    row = life.start_now(session, case=access.case, by=caller.user_id, now=ctx.clock.now())
    return review_read(row)


@router.get("/plan", response_model=PlanRead, **bearer(404))
def read_plan(case_id: int, caller: CurrentUser, session: DbRead) -> PlanRead:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_JUDGMENTS)
    return _plan_read(session.get(ReviewPlan, case_id))


@router.put("/plan", response_model=PlanRead, **bearer(404))
def write_plan(case_id: int, body: PlanWrite, caller: CurrentUser, session: DbWrite,
               ctx: Context) -> PlanRead:
    """Set the plan (logged). Once the case has been verified, the reviews not yet opened
    are cancelled (an unannounced one revealed) and the new plan's are scheduled."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.START_REVIEWS)
    row = plan.set_plan(session, case=access.case, spec=plan.PlanSpec(
        offsets_days=tuple(body.offsets_days), unannounced_count=body.unannounced.count,
        window_from_days=body.unannounced.window_from_days,
        window_to_days=body.unannounced.window_to_days, response_hours=body.response_hours),
        by=caller.user_id, now=ctx.clock.now())
    return _plan_read(row)
