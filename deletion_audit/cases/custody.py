"""``custody-until`` before expiry: the custodian's agent re-hashes the sealed container (a
``sealed_container`` scope named by the obligation's ``scope_id``) and the server compares
each finished scan with the container digest the custodian's latest ``sealed`` statement
recorded. A scan of one object whose root is that digest's RFC 6962 leaf keeps the
obligation in force; anything else (another digest, an unreadable or missing container)
breaches it with a logged event, which the verdict blocks on, the replay derives and
``tick(now)`` judges (scheduling/breaches.py). A scan of the container started after the
custodian said it was destroyed is not compared (the container is meant to be gone).

At expiry the ``destroyed`` (or ``sanitised``) statement is due, and with it a check that
none of the items appear anywhere (verdicts/custody.py says where each part is decided):
:func:`check_destruction` breaches the obligation, with a logged event naming the scopes,
when a counted scan of another scope finished after that statement found manifest items —
at the scan's ingest and at the statement's, so the order of arrival does not matter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.obligations import record_breach
from deletion_audit.core import dsse
from deletion_audit.core.merkle import leaf_hash
from deletion_audit.core.predicates import (
    CustodyStatementPredicate,
    ScanPredicate,
    parse_predicate,
)
from deletion_audit.core.statements import parse_statement
from deletion_audit.models import (
    Attestation,
    Obligation,
    ObligationKind,
    ObligationState,
    PersonStatement,
    ScanRecord,
    Scope,
    ScopeKind,
)
from deletion_audit.verdicts.custody import DirtyScan, destroyed_at, dirty_scans


def sealed_digest(session: Session, obligation_id: int) -> str | None:
    """The container digest of the obligation's latest ``sealed`` statement, if any."""
    envelope = session.execute(
        select(Attestation.envelope)
        .join(PersonStatement, PersonStatement.attestation_id == Attestation.id)
        .where(PersonStatement.obligation_id == obligation_id,
               PersonStatement.outcome == "sealed")
        .order_by(PersonStatement.stated_at.desc(), Attestation.id.desc()).limit(1)
    ).scalar_one_or_none()
    if envelope is None:
        return None
    predicate = parse_predicate(parse_statement(dsse.Envelope.from_json(envelope).payload))
    if not isinstance(predicate, CustodyStatementPredicate):
        return None
    return predicate.container_digest


def problem(predicate: ScanPredicate, digest: str) -> str | None:
    """Why the scan does not show the sealed container unchanged; None if it does."""
    assert predicate.counts is not None  # noqa: S101 - a last part carries its totals
    if predicate.counts.hashed != 1:
        return f"the container was not read ({predicate.counts.hashed} objects hashed)"
    if predicate.root != leaf_hash(bytes.fromhex(digest)).hex():
        return "the container's digest differs from the one recorded at sealing"
    return None


def check_container(session: Session, *, case_id: int, scope: Scope,
                    predicate: ScanPredicate, statement_id: str, now: datetime) -> list[int]:
    """Compare a finished scan of a sealed container with each custody obligation on it;
    the obligations it breached."""
    if scope.kind != ScopeKind.SEALED_CONTAINER.value or not predicate.last:
        return []
    rows = session.execute(select(Obligation).where(
        Obligation.case_id == case_id, Obligation.kind == ObligationKind.CUSTODY_UNTIL.value,
        Obligation.state == ObligationState.IN_FORCE.value).order_by(Obligation.id)).scalars()
    breached = []
    for row in rows:
        if row.details.get("scope_id") != scope.id:
            continue
        digest = sealed_digest(session, row.id)
        if digest is None:
            continue  # nothing recorded at sealing to compare with
        gone = destroyed_at(session, row.id)
        if gone is not None and predicate.started_at >= gone:
            continue  # read after the custodian destroyed it: nothing to keep unchanged
        found = problem(predicate, digest)
        if found is None:
            continue
        record_breach(session, row, statement_id=statement_id, now=now, reason=(
            f"scan {predicate.scan_id} of sealed container scope {scope.id}: {found}"))
        breached.append(row.id)
    return breached


def _breach(session: Session, row: Obligation, *, found: list[DirtyScan], statement_id: str,
            now: datetime) -> None:
    record_breach(
        session, row, statement_id=statement_id, now=now,
        reason="after the custodian's destruction statement, manifest items were found: "
               + "; ".join(f"scan {d.scan_id} of scope {d.scope_id}: {d.items} items"
                           for d in found),
        scopeIds=sorted({d.scope_id for d in found}))


def check_destruction(session: Session, *, case_id: int, statement_id: str, now: datetime,
                      scan: ScanRecord | None = None, agent_id: int | None = None,
                      scan_id: str | None = None) -> list[int]:
    """Breach each custody-until obligation of the case (in force or discharged) whose
    earliest destruction statement is followed by a counted scan that found manifest
    items: every such scan when a custody statement arrives, only the scan just finished
    (``scan``, or the one ``agent_id`` and ``scan_id`` name) when a scan's last part does.
    The obligations breached. Cheap when nothing was destroyed: one indexed query."""
    rows = session.execute(select(Obligation).where(
        Obligation.case_id == case_id, Obligation.kind == ObligationKind.CUSTODY_UNTIL.value,
        Obligation.state.in_([ObligationState.IN_FORCE.value,
                              ObligationState.DISCHARGED.value]))
        .order_by(Obligation.id)).scalars().all()
    destroyed = [(row, since) for row in rows
                 if (since := destroyed_at(session, row.id)) is not None]
    if not destroyed:
        return []
    if scan is None and agent_id is not None and scan_id is not None:
        scan = scan_record(session, agent_id=agent_id, scan_id=scan_id)
        if scan is None:
            return []
    breached = []
    for row, since in destroyed:
        found = dirty_scans(session, case_id=case_id, since=since,
                            scan_pk=scan.id if scan is not None else None)
        if found:
            _breach(session, row, found=found, statement_id=statement_id, now=now)
            breached.append(row.id)
    return breached


def scan_record(session: Session, *, agent_id: int, scan_id: str) -> ScanRecord | None:
    return session.execute(select(ScanRecord).where(
        ScanRecord.agent_id == agent_id, ScanRecord.scan_id == scan_id)).scalar_one_or_none()

