"""``retention`` rules checked at every scan: "no face image older than 24 h in scope S".

A scan of a scope under a rule carries an age summary per kind (the agent's, from file
mtimes, object LastModified or the scope's timestamp field; measured at the scan's
``startedAt``). The last part of each scan is checked here, in the ingest transaction: an
object of a limited kind older than the rule's maximum age breaches the obligation. The
breach is a logged ``obligation`` state event (``in_force`` → ``breached``, naming the scan
statement), so the verdict blocks on it and the replay derives it from the log; the tick
then judges it with the service key (scheduling/breaches.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.obligations import record_breach
from deletion_audit.core.predicates import AgeSummary, ScanPredicate, format_timestamp
from deletion_audit.models import Obligation, ObligationKind, ObligationState

ROWS = "row"
"""The kind every row of a SQL scope has in its age summary: the table is what the rule is
about, so rows are held to the rule whatever kinds it names."""


@dataclass(frozen=True)
class Breach:
    kind: str
    oldest: datetime
    max_age_hours: int

    @property
    def detail(self) -> str:
        return (f"{self.kind}: oldest written {format_timestamp(self.oldest)}, beyond "
                f"{self.max_age_hours} h")


def covers(details: Mapping[str, Any], scope_id: int) -> bool:
    scopes = details.get("scope_ids") or []
    return not scopes or scope_id in scopes


def rules(session: Session, *, case_id: int, states: Sequence[str] = (
        ObligationState.IN_FORCE.value,)) -> list[Obligation]:
    return list(session.execute(select(Obligation).where(
        Obligation.case_id == case_id, Obligation.kind == ObligationKind.RETENTION.value,
        Obligation.state.in_(states)).order_by(Obligation.id)).scalars())


def scopes_under_rules(session: Session, *, case_id: int, scope_ids: Sequence[int],
                       states: Sequence[str] = (ObligationState.IN_FORCE.value,
                                                ObligationState.BREACHED.value)) -> set[int]:
    """Which of ``scope_ids`` a rule in one of ``states`` covers. By default the standing
    ones, whose scans carry age summaries (a breached rule still asks for them, so a breach
    stays visible); the verdict and reviews ask which rules in force a scan without ages
    leaves unchecked (a breached one already says more)."""
    standing = rules(session, case_id=case_id, states=states)
    return {s for s in scope_ids if any(covers(r.details, s) for r in standing)}


def breaches(details: Mapping[str, Any], ages: Mapping[str, AgeSummary],
             measured_at: datetime) -> list[Breach]:
    """The kinds whose oldest object is older than the rule allows at ``measured_at``."""
    hours = int(details["max_age_hours"])
    limit = measured_at - timedelta(hours=hours)
    kinds = set(details.get("kinds") or [])
    return [Breach(kind, summary.oldest, hours) for kind, summary in sorted(ages.items())
            if (not kinds or kind in kinds or kind == ROWS) and summary.count
            and summary.oldest < limit]


def check_scan(session: Session, *, case_id: int, scope_id: int, predicate: ScanPredicate,
               statement_id: str, now: datetime) -> list[int]:
    """Check the rules covering the scope against a scan's last part; the obligations it
    breached (each moved to ``breached`` with a logged event)."""
    if not predicate.last or predicate.ages is None:
        return []
    breached = []
    for rule in rules(session, case_id=case_id):
        if not covers(rule.details, scope_id):
            continue
        found = breaches(rule.details, predicate.ages, predicate.started_at)
        if not found:
            continue
        record_breach(session, rule, statement_id=statement_id, now=now,
                      reason=f"scan {predicate.scan_id} of scope {scope_id}: "
                             + "; ".join(b.detail for b in found))
        breached.append(rule.id)
    return breached
