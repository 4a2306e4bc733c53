"""``custody-until`` before expiry: the custodian's agent re-hashes the sealed container (a
``sealed_container`` scope named by the obligation's ``scope_id``) and the server compares
each finished scan with the container digest the custodian's latest ``sealed`` statement
recorded. A scan of one object whose root is that digest's RFC 6962 leaf keeps the
obligation in force; anything else (another digest, an unreadable or missing container)
breaches it with a logged event, which the verdict blocks on, the replay derives and
``tick(now)`` judges (scheduling/breaches.py). At expiry the ``destroyed`` statement is
due: the deadline machinery judges it overdue if it is missing (scheduling/deadlines.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
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
    Scope,
    ScopeKind,
)


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
        found = problem(predicate, digest)
        if found is None:
            continue
        previous = row.state
        row.state, row.state_changed_at = ObligationState.BREACHED.value, now
        session.flush()
        log_event(session, "obligation", {
            "action": "state", "caseId": case_id, "obligationId": row.id,
            "from": previous, "to": ObligationState.BREACHED.value,
            "reason": f"scan {predicate.scan_id} of sealed container scope {scope.id}: {found}",
            "by": None, "statementId": statement_id,
        }, now=now)
        breached.append(row.id)
    return breached
