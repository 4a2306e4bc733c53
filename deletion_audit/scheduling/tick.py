"""``tick(now)``: everything due at ``now`` on the domain clock, found from the due instants
stored in domain rows (agents' last signs of life and heartbeat intervals, obligations'
derived due instants, escalation steps, reviews' due instants and windows). Each effect
is its own transaction and is guarded by a unique row (or a locked row whose state it
checks again), so a late tick catches up on what fell due meanwhile, a repeated
one does nothing twice, and two instances ticking at once judge each episode once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from deletion_audit.cases import archive, purge
from deletion_audit.db import Database
from deletion_audit.models import Agent, Case, Escalation, Finding, Judgment, Obligation
from deletion_audit.notifications import service as notifications
from deletion_audit.reviews import due as reviews
from deletion_audit.reviews.due import ReviewsReport
from deletion_audit.scheduling import breaches, deadlines, liveness
from deletion_audit.scheduling.judgments import already_judged, judge, message_context

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    judgments: list[str] = field(default_factory=list)
    """The episodes judged by this tick."""
    escalations_sent: list[int] = field(default_factory=list)
    escalations_resolved: list[int] = field(default_factory=list)
    reviews: ReviewsReport = field(default_factory=ReviewsReport)
    """Plans anchored, reviews opened and closed (reviews/due.py)."""
    archived: list[int] = field(default_factory=list)
    """Closed cases' court bundles archived (cases/archive.py)."""
    purged: list[int] = field(default_factory=list)
    """Cases whose own data was deleted after the retention period (cases/purge.py)."""


def _judge_silence(db: Database, silence: liveness.Silence, *,
                   service_key: Ed25519PrivateKey, now: datetime) -> bool:
    with db.write() as session:
        if already_judged(session, silence.episode):
            return False
        agent = session.get_one(Agent, silence.agent_id)
        if not liveness.still_silent(agent, silence.since):
            return False  # a heartbeat arrived since the candidates were read
        judge(session, case=session.get_one(Case, agent.case_id), finding=silence.finding,
              episode=silence.episode, since=silence.since,
              detail=liveness.detail(agent, silence.finding),
              context=liveness.agent_context(agent), agent_id=agent.id,
              agent_public_id=agent.public_id, service_key=service_key, now=now)
    return True


def _judge_overdue(db: Database, overdue: deadlines.Overdue, *,
                   service_key: Ed25519PrivateKey, now: datetime) -> bool:
    with db.write() as session:
        if already_judged(session, overdue.episode):
            return False
        obligation = session.get_one(Obligation, overdue.obligation_id)
        judge(session, case=session.get_one(Case, obligation.case_id),
              finding=Finding.OVERDUE, episode=overdue.episode, since=overdue.due_at,
              detail=deadlines.detail(obligation),
              context=deadlines.obligation_context(obligation),
              obligation_id=obligation.id, service_key=service_key, now=now)
    return True


def _judge_breach(db: Database, breach: breaches.Breach, *,
                  service_key: Ed25519PrivateKey, now: datetime) -> bool:
    with db.write() as session:
        if already_judged(session, breach.episode):
            return False
        obligation = session.get_one(Obligation, breach.obligation_id)
        if not breaches.still_breached(obligation, breach.since):
            return False  # changed since the candidates were read
        judge(session, case=session.get_one(Case, obligation.case_id),
              finding=Finding.BREACHED, episode=breach.episode, since=breach.since,
              detail=breaches.detail(obligation),
              context=breaches.obligation_context(obligation),
              obligation_id=obligation.id, service_key=service_key, now=now)
    return True


def _escalate(db: Database, escalation_id: int, *, now: datetime) -> bool | None:
    """Send a due escalation step if its finding still stands; None if already done."""
    with db.write() as session:
        step = session.get(Escalation, escalation_id, with_for_update=True)
        if step is None or step.done_at is not None:
            return None
        judgment = session.get_one(Judgment, step.judgment_id)
        case = session.get_one(Case, judgment.case_id)
        if judgment.agent_id is not None:
            agent = session.get_one(Agent, judgment.agent_id)
            stands = liveness.still_silent(agent, judgment.since)
            context = liveness.agent_context(agent)
        else:
            assert judgment.obligation_id is not None  # noqa: S101 - one or the other
            obligation = session.get_one(Obligation, judgment.obligation_id)
            if judgment.finding == Finding.BREACHED.value:
                stands = breaches.still_breached(obligation, judgment.since)
                context = breaches.obligation_context(obligation)
            else:
                stands = deadlines.still_overdue(session, obligation)
                context = deadlines.obligation_context(obligation)
        if stands:
            notifications.enqueue(
                session, case=case, finding=judgment.finding, about=judgment.episode,
                step=step.step, context=message_context(judgment, context),
                data={"caseId": case.id, "finding": judgment.finding,
                      "statementId": judgment.statement_id}, now=now)
        step.done_at, step.outcome = now, "sent" if stands else "resolved"
        return stands


def tick(db: Database, *, service_key: Ed25519PrivateKey, now: datetime,
         archiver: archive.Archiver | None = None,
         retention: timedelta | None = None) -> TickReport:
    """Do everything due at ``now`` (domain clock). Closed cases' court bundles are
    archived only when given an ``archiver`` (the export needs the log's keys), and their
    data purged only when given the ``retention`` period."""
    report = TickReport()
    with db.read() as session:
        silences = liveness.due_silences(session, now=now)
        overdue = deadlines.due_overdue(session, now=now)
        breached = breaches.due_breaches(session)
    judges: list[tuple[Sequence[Any], Callable[..., bool]]] = [
        (silences, _judge_silence), (overdue, _judge_overdue), (breached, _judge_breach)]
    for due, judge_one in judges:
        for item in due:
            try:
                if judge_one(db, item, service_key=service_key, now=now):
                    report.judgments.append(item.episode)
            except IntegrityError:
                # Another instance judged this episode first (its guard row is unique).
                log.info("judged concurrently", extra={"episode": item.episode})
    report.reviews = reviews.run(db, service_key=service_key, now=now)
    if archiver is not None:
        report.archived = archive.run(db, archiver, now=now)
    if retention is not None:
        report.purged = purge.run(
            db, retention=retention, now=now,
            data_dir=archiver.settings.data_dir if archiver is not None else None)
    # Steps made by this tick's judgments are due later than now (after_hours > 0).
    with db.read() as session:
        steps = list(session.execute(
            select(Escalation.id).where(Escalation.done_at.is_(None), Escalation.due_at <= now)
            .order_by(Escalation.due_at, Escalation.id)).scalars())
    for escalation_id in steps:
        outcome = _escalate(db, escalation_id, now=now)
        if outcome is True:
            report.escalations_sent.append(escalation_id)
        elif outcome is False:
            report.escalations_resolved.append(escalation_id)
    if report.judgments or report.escalations_sent or report.reviews.opened \
            or report.reviews.closed:
        log.info("tick", extra={"judgments": report.judgments,
                                "escalations": report.escalations_sent,
                                "reviews_opened": report.reviews.opened,
                                "reviews_closed": report.reviews.closed})
    return report
