"""Verdict versions: computed, numbered, signed by the service key, logged, kept.

A version is computed by the debounced job (verdicts/tasks.py) for every case marked since
its last version, and for every case an obligation of which fell due since then (time
passing changes a verdict without any event); on demand when a case has none yet.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
from deletion_audit.core import dsse
from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.predicates import VerdictItemCounts, VerdictPredicate
from deletion_audit.core.statements import Statement, Subject, statement_bytes, statement_id
from deletion_audit.log.service import current_size
from deletion_audit.models import CasePurge, Obligation, ObligationState, Verdict, VerdictMark
from deletion_audit.verdicts.engine import compute_report
from deletion_audit.verdicts.schemas import Report

# Statements of one case arrive in bursts (multi-part scans, a deletion run): wait this
# long after the first mark so a burst yields one version, not hundreds.
DEBOUNCE = timedelta(seconds=5)


def latest_verdict(session: Session, *, case_id: int) -> Verdict | None:
    return session.execute(select(Verdict).where(Verdict.case_id == case_id)
                           .order_by(Verdict.version.desc()).limit(1)).scalar_one_or_none()


def is_stale(session: Session, *, case_id: int) -> bool:
    return session.execute(select(VerdictMark.id).where(
        VerdictMark.case_id == case_id).limit(1)).first() is not None


def report_digest(report: Report) -> str:
    """SHA-256 of the report's canonical JSON: the verdict statement's subject digest."""
    return hashlib.sha256(canonical_json(report.model_dump(mode="json"))).hexdigest()


def verdict_predicate(report: Report, *, version: int, log_size: int,
                      now: datetime) -> VerdictPredicate:
    """What the service signs for a report: also what an offline replay rebuilds
    (verdicts/replay.py), so both go through here."""
    return VerdictPredicate(
        case_id=str(report.case_id), version=version, outcome=report.outcome,
        reasons=[r.code for r in report.reasons],
        items=VerdictItemCounts(total=report.items.total, present=report.items.present,
                                deleted=report.items.deleted, unseen=report.items.unseen),
        as_of_log_size=log_size, as_of=now)


def _sign(report: Report, *, version: int, log_size: int, now: datetime,
          service_key: Ed25519PrivateKey) -> tuple[VerdictPredicate, bytes, str]:
    predicate = verdict_predicate(report, version=version, log_size=log_size, now=now)
    subject = Subject(name=f"verdict:case:{report.case_id}:v{version}",
                      digest={"sha256": report_digest(report)})
    payload = statement_bytes(Statement(subject=(subject,),
                                        predicate_type=predicate.PREDICATE_TYPE,
                                        predicate=predicate.to_predicate()))
    envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, service_key)
    return predicate, envelope.to_json(), statement_id(payload)


def compute_version(
    session: Session, *, case_id: int, service_key: Ed25519PrivateKey, now: datetime,
    computed: tuple[Report, int] | None = None,
) -> Verdict:
    """Compute, sign, log and store the case's next verdict version. ``computed``: the
    report and the log size it is as of, computed beforehand (at ``now``) from one snapshot
    that saw exactly the events below that size (verdicts/tasks.py on SQLite)."""
    if computed is None:
        report, log_size = compute_report(session, case_id=case_id, now=now), None
    else:
        report, log_size = computed
    previous = session.execute(select(func.max(Verdict.version)).where(
        Verdict.case_id == case_id)).scalar_one()
    version = (previous or 0) + 1
    if log_size is None:
        log_size = current_size(session)
    predicate, envelope, sid = _sign(report, version=version, log_size=log_size, now=now,
                                     service_key=service_key)
    # Public: counts and codes only — never digests, pseudonyms or locations.
    leaf = log_event(session, "verdict", {
        "caseId": case_id, "version": version, "outcome": report.outcome,
        "reasons": predicate.reasons, "items": predicate.items.to_predicate(),
        "people": report.people.model_dump(), "asOfLogSize": log_size,
        "statementId": sid, "envelopeSha256": hashlib.sha256(envelope).hexdigest(),
    }, now=now)
    row = Verdict(case_id=case_id, version=version, outcome=report.outcome,
                  as_of_log_size=log_size, as_of=now, report=report.model_dump(mode="json"),
                  statement_id=sid, envelope=envelope, leaf_hash=leaf, created_at=now)
    session.add(row)
    session.flush()
    return row


def cases_due(session: Session, *, now: datetime) -> list[tuple[int, list[int]]]:
    """Cases to recompute now, each with the marks this run takes: cases whose first mark
    is at least :data:`DEBOUNCE` old, and cases an obligation of which fell due after
    their latest version (with no marks to take)."""
    marks: dict[int, list[int]] = defaultdict(list)
    first: dict[int, datetime] = {}
    for mark_id, case_id, marked_at in session.execute(
            select(VerdictMark.id, VerdictMark.case_id, VerdictMark.marked_at)):
        marks[case_id].append(mark_id)
        first[case_id] = min(first.get(case_id, marked_at), marked_at)
    due = {case_id: ids for case_id, ids in marks.items() if first[case_id] <= now - DEBOUNCE}
    latest = (select(Verdict.case_id, func.max(Verdict.as_of).label("as_of"))
              .group_by(Verdict.case_id).subquery())
    fell_due = session.execute(
        select(Obligation.case_id).join(latest, latest.c.case_id == Obligation.case_id)
        .where(Obligation.due_at.is_not(None), Obligation.due_at <= now,
               Obligation.due_at > latest.c.as_of,
               Obligation.state != ObligationState.WAIVED.value).distinct()).scalars()
    for case_id in fell_due:
        due.setdefault(case_id, [])
    return sorted(due.items())


def recompute(
    session: Session, *, case_id: int, mark_ids: list[int], service_key: Ed25519PrivateKey,
    now: datetime, computed: tuple[Report, int] | None = None,
) -> Verdict:
    """A new version for ``case_id``; the marks it answers are removed in the same
    transaction (exactly those: a mark written meanwhile waits for the next run). A case
    whose data was purged after its retention period keeps its last signed verdict: the
    rows a new one would be computed from are gone."""
    if session.get(CasePurge, case_id) is not None:
        last = latest_verdict(session, case_id=case_id)
        if last is not None:
            session.execute(delete(VerdictMark).where(VerdictMark.case_id == case_id))
            return last
    row = compute_version(session, case_id=case_id, service_key=service_key, now=now,
                          computed=computed)
    for start in range(0, len(mark_ids), 1000):
        session.execute(delete(VerdictMark).where(
            VerdictMark.id.in_(mark_ids[start:start + 1000])))
    return row


def verdict_for_reading(
    session: Session, *, case_id: int, service_key: Ed25519PrivateKey, now: datetime
) -> Verdict:
    """The latest version, computed on demand when the case has none yet."""
    row = latest_verdict(session, case_id=case_id)
    if row is not None:
        return row
    marks = list(session.execute(select(VerdictMark.id).where(
        VerdictMark.case_id == case_id)).scalars())
    return recompute(session, case_id=case_id, mark_ids=marks, service_key=service_key,
                     now=now)
