"""A review's life on the domain clock: due → a fresh challenge (origin ``review``) for
every live binding of an active agent of the case → a response window (72 h by default)
→ closed with an outcome, signed with the service key as a judgment statement, logged and
stored with its envelope.

The outcome looks, for each challenged scope, at the latest counted scan (challenged,
complete or not) whose challenge was issued after the review opened and which arrived
before the window closed — a scan answering the review's own challenge, or a later one
after the company deleted again:

- ``findings``: a manifest item present again, a scan that did not cover its whole scope
  (a new or unreadable area: partial coverage), a scan of a scope under a retention rule
  without an age summary (the rule cannot be shown kept), or a statement of a challenged
  agent the service refused during the window (a broken history: a fork, a revoked key,
  ...);
- ``no_response``: otherwise, some challenged scope was not answered (or no agent was
  bound at all);
- ``clean``: every challenged scope answered clean and complete.

What the outcome does to the verdict is in verdicts/engine.py (:func:`review_reasons`);
a ``findings`` or ``no_response`` outcome also moves a case being monitored (or
verified) back to remediation, logged with the review as its reason."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.cases import retention
from deletion_audit.cases.service import log_event
from deletion_audit.cases.status import check_transition, is_reopening
from deletion_audit.core.predicates import JudgmentPredicate, format_timestamp
from deletion_audit.errors import Conflict
from deletion_audit.hosts.challenges import issue_challenge
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    Case,
    CaseStatus,
    Challenge,
    ChallengeOrigin,
    ObligationState,
    Refusal,
    Review,
    ReviewKind,
    ReviewOutcome,
    ReviewPlan,
    ReviewState,
    ScanItem,
    ScanRecord,
    Scope,
)
from deletion_audit.notifications import service as notifications
from deletion_audit.notifications.templates import beijing
from deletion_audit.reviews.plan import DEFAULT_RESPONSE_HOURS, reveal
from deletion_audit.scheduling.judgments import sign_judgment
from deletion_audit.verdicts import queries
from deletion_audit.verdicts.recording import mark_changed

_KIND_ZH = {ReviewKind.ANNOUNCED.value: "预告", ReviewKind.UNANNOUNCED.value: "不预告",
            ReviewKind.ON_DEMAND.value: "即时"}
_OUTCOME_ZH = {ReviewOutcome.CLEAN.value: "未发现问题", ReviewOutcome.FINDINGS.value: "发现问题",
               ReviewOutcome.NO_RESPONSE.value: "未在期限内响应"}


def _notify(session: Session, case: Case, review: Review, what: str,
            context: Mapping[str, object], now: datetime) -> None:
    notifications.enqueue(
        session, case=case, finding=f"review-{what}", about=f"review:{review.id}:{what}",
        step=0, context={"review_id": review.id, "kind_zh": _KIND_ZH[review.kind],
                         "kind": review.kind.replace("_", "-"), **context},
        data={"caseId": case.id, "reviewId": review.id, "kind": review.kind,
              **{k: v for k, v in context.items() if not k.endswith("_zh")}},
        now=now, payload_type=f"review.{what}")


def open_review(session: Session, review: Review, *, now: datetime,
                by: int | None = None) -> list[Challenge]:
    """Issue the review's challenges and start its window (the caller locked the row and
    found it planned)."""
    case = session.get_one(Case, review.case_id)
    ttl = timedelta(hours=review.response_hours)
    bindings = session.execute(
        select(Binding, Agent).join(Agent, Agent.id == Binding.agent_id)
        .join(Scope, Scope.id == Binding.scope_id)
        .where(Scope.case_id == review.case_id, Binding.unbound_at.is_(None),
               Agent.status == AgentStatus.ACTIVE.value)
        .order_by(Binding.scope_id, Agent.id)).all()
    issued = [issue_challenge(session, agent=agent, scope_id=binding.scope_id,
                              origin=ChallengeOrigin.REVIEW, ttl=ttl, issued_by=by, now=now)
              for binding, agent in bindings]
    review.state, review.opened_at = ReviewState.OPEN.value, now
    review.closes_at = now + ttl
    review.challenge_ids = [c.id for c in issued]
    session.flush()
    log_event(session, "review", {
        "caseId": review.case_id, "action": "opened", "reviewId": review.id,
        "kind": review.kind, "dueAt": format_timestamp(review.due_at), **reveal(review),
        "challengeIds": review.challenge_ids, "closesAt": format_timestamp(review.closes_at),
        "by": by}, now=now)
    _notify(session, case, review, "opened",
            {"closes_at": beijing(review.closes_at), "challenges": len(issued)}, now)
    return issued


def start_now(session: Session, *, case: Case, by: int, now: datetime) -> Review:
    """A review the prosecutor starts at once (kind ``on_demand``)."""
    if case.status == CaseStatus.CLOSED.value:
        raise Conflict("the case is closed: reopen it before starting a review")
    plan = session.get(ReviewPlan, case.id)
    hours = plan.response_hours if plan is not None else DEFAULT_RESPONSE_HOURS
    review = Review(case_id=case.id, kind=ReviewKind.ON_DEMAND.value,
                    state=ReviewState.PLANNED.value, due_at=now, response_hours=hours,
                    created_at=now, created_by=by)
    session.add(review)
    session.flush()
    open_review(session, review, now=now, by=by)
    return review


def assess(session: Session, review: Review) -> tuple[ReviewOutcome, list[dict[str, Any]]]:
    """The outcome of an open review at the end of its window, and its findings."""
    assert review.opened_at is not None  # noqa: S101 - an open review has both
    assert review.closes_at is not None  # noqa: S101
    ids = review.challenge_ids or []
    pairs = session.execute(select(Challenge.scope_id, Challenge.agent_id, Agent.public_id)
                            .join(Agent, Agent.id == Challenge.agent_id)
                            .where(Challenge.id.in_(ids))).all() if ids else []
    present = (select(func.count()).where(ScanItem.scan_pk == ScanRecord.id)
               .correlate(ScanRecord).scalar_subquery())
    findings: list[dict[str, Any]] = []
    unanswered: list[dict[str, Any]] = []
    scope_ids = sorted({p.scope_id for p in pairs})
    ruled = retention.scopes_under_rules(session, case_id=review.case_id, scope_ids=scope_ids,
                                         states=(ObligationState.IN_FORCE.value,))
    for scope_id in scope_ids:
        latest = session.execute(
            select(ScanRecord.coverage, present, ScanRecord.ages_reported)
            .join(Challenge, Challenge.id == ScanRecord.challenge_id)
            .where(queries.counted_scans(review.case_id), ScanRecord.scope_id == scope_id,
                   Challenge.issued_at >= review.opened_at,
                   ScanRecord.received_at <= review.closes_at)
            .order_by(ScanRecord.finished_at.desc(), ScanRecord.id.desc()).limit(1)).first()
        if latest is None:
            unanswered.append({"code": "no_response", "scopeId": scope_id})
            continue
        coverage, n, ages = latest
        if n:
            findings.append({"code": "items_present", "scopeId": scope_id, "items": int(n)})
        if coverage != "complete":
            findings.append({"code": "partial_coverage", "scopeId": scope_id,
                             "coverage": coverage})
        if scope_id in ruled and not ages:
            findings.append({"code": "retention_unchecked", "scopeId": scope_id})
    for agent_id, public_id in sorted({(p.agent_id, p.public_id) for p in pairs}):
        codes = sorted(set(session.execute(select(Refusal.code).where(
            Refusal.agent_id == agent_id, Refusal.received_at >= review.opened_at,
            Refusal.received_at <= review.closes_at)).scalars()))
        if codes:
            findings.append({"code": "agent_refused", "agentId": public_id, "refusals": codes})
    if findings:
        return ReviewOutcome.FINDINGS, findings + unanswered
    if unanswered or not pairs:
        return ReviewOutcome.NO_RESPONSE, unanswered
    return ReviewOutcome.CLEAN, []


def _detail(outcome: ReviewOutcome, findings: list[dict[str, Any]]) -> str:
    if not findings:
        return outcome.value if outcome is ReviewOutcome.CLEAN else "no agent to challenge"
    return "; ".join(" ".join(f"{k}={v}" for k, v in f.items()) for f in findings)[:4096]


def _move_back(session: Session, case: Case, review: Review, now: datetime) -> None:
    current = CaseStatus(case.status)
    if current not in (CaseStatus.MONITORING, CaseStatus.VERIFYING):
        return
    reason = f"follow-up review {review.id} closed {review.outcome}"
    check_transition(current, CaseStatus.REMEDIATING, reason)
    case.status, case.status_changed_at = CaseStatus.REMEDIATING.value, now
    session.flush()
    log_event(session, "case-status", {
        "caseId": case.id, "from": current.value, "to": CaseStatus.REMEDIATING.value,
        "reopening": is_reopening(current, CaseStatus.REMEDIATING), "reason": reason,
        "by": None, "reviewId": review.id}, now=now)


def close_review(session: Session, review: Review, *, service_key: Ed25519PrivateKey,
                 now: datetime) -> None:
    """Judge, sign, log and store the review's outcome (the caller locked the row and found
    it open past its window)."""
    case = session.get_one(Case, review.case_id)
    outcome, findings = assess(session, review)
    episode = f"review:{review.id}"
    predicate = JudgmentPredicate(
        case_id=str(case.id), finding=f"review-{outcome.value.replace('_', '-')}",
        detail=_detail(outcome, findings), judged_at=now)
    envelope, sid = sign_judgment(predicate, episode=episode, service_key=service_key)
    review.state, review.closed_at = ReviewState.CLOSED.value, now
    review.outcome, review.findings = outcome.value, findings
    review.statement_id, review.envelope = sid, envelope
    session.flush()
    review.leaf_hash = log_event(session, "review", {
        "caseId": case.id, "action": "closed", "reviewId": review.id, "kind": review.kind,
        "outcome": outcome.value, "findings": findings, "statementId": sid,
        "envelopeSha256": hashlib.sha256(envelope).hexdigest()}, now=now)
    mark_changed(session, case_id=case.id, now=now)
    if outcome is not ReviewOutcome.CLEAN:
        _move_back(session, case, review, now)
    _notify(session, case, review, "closed",
            {"outcome": outcome.value, "outcome_zh": _OUTCOME_ZH[outcome.value],
             "statement_id": sid}, now)
    session.flush()
