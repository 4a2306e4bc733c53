"""``custody-until`` at expiry: what shows that the sealed backup's items are gone.

A custodian's ``destroyed`` or ``sanitised`` statement is half of it; the other half is
that none of the manifest's items appear anywhere: every scope of the case other than
the sealed containers has a counted, complete scan (verdicts/queries.py
``counted_scans``) that finished after the statement's ``occurredAt`` and found no
manifest item, and no counted scan finished after it found one.

Where this is decided, so that the order of arrival does not matter:

- **discharge** (``in_force`` → ``discharged``) is derived, not logged: :func:`settle` runs
  when a custody statement is recorded and when the last part of any scan is recorded
  (verdicts/recording.py), so whichever of the two completes the picture discharges the
  obligation, at once. Both recordings are replayed from the log by the same function,
  in log order, so the bundle verifier derives the same state at the same point;
- **breach** is logged (cases/custody.py): ingest of a scan's last part and of a custody
  statement both look for counted scans after the earliest destruction statement that
  found manifest items, so a scan that arrived before the statement breaches it as one
  that arrives after does; a discharged obligation is breached too, because a clean scan
  of a scope may well arrive before a dirty later one;
- **overdue** is the deadline machinery's (scheduling/deadlines.py): at expiry, an
  obligation still in force is overdue, and the verdict names what is missing with
  :func:`pending` — the statement (``custody_destruction_not_stated``) or the scans of the
  scopes named (``custody_absence_not_shown``).

A scope declared after the discharge does not undo it: the discharge records what was
shown when the last piece arrived (the breach check still reads every later scan). Nor
does a later revocation of an agent's key as compromised, whose since-time voids a scan
the discharge counted: the verdict then stops counting the scan, but the obligation stays
discharged until the prosecutor sets it back in force (a known limit: a derived discharge
is not told apart from the prosecutor's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from deletion_audit.core.predicates import CUSTODY_STATEMENT
from deletion_audit.models import (
    Obligation,
    ObligationKind,
    ObligationState,
    PersonStatement,
    ScanItem,
    ScanRecord,
    Scope,
    ScopeKind,
)
from deletion_audit.verdicts import queries

DESTRUCTION = ("destroyed", "sanitised")
NOT_STATED = "custody_destruction_not_stated"
NOT_SHOWN = "custody_absence_not_shown"


@dataclass(frozen=True)
class Pending:
    """Why a custody-until obligation in force is not discharged yet."""

    code: str
    scope_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class DirtyScan:
    """A counted scan after the destruction statement that found manifest items."""

    scope_id: int
    scan_id: str
    items: int


def destroyed_at(session: Session, obligation_id: int) -> datetime | None:
    """The earliest ``occurredAt`` of the obligation's destroyed or sanitised statements:
    from then on the sealed backup is said to be gone."""
    at: datetime | None = session.execute(select(func.min(PersonStatement.stated_at)).where(
        PersonStatement.obligation_id == obligation_id,
        PersonStatement.predicate_type == CUSTODY_STATEMENT,
        PersonStatement.outcome.in_(DESTRUCTION))).scalar_one()
    return at


def _other_scopes(session: Session, case_id: int) -> list[int]:
    return list(session.execute(select(Scope.id).where(
        Scope.case_id == case_id, Scope.kind != ScopeKind.SEALED_CONTAINER.value)
        .order_by(Scope.id)).scalars())


def unshown_scopes(session: Session, *, case_id: int, since: datetime) -> list[int]:
    """Scopes (not sealed containers) with no counted complete scan finished after
    ``since`` that found no manifest item."""
    clean_after = exists().where(
        queries.counted_scans(case_id), ScanRecord.scope_id == Scope.id,
        ScanRecord.coverage == "complete", ScanRecord.finished_at > since,
        ~exists().where(ScanItem.scan_pk == ScanRecord.id))
    return list(session.execute(select(Scope.id).where(
        Scope.case_id == case_id, Scope.kind != ScopeKind.SEALED_CONTAINER.value,
        ~clean_after).order_by(Scope.id)).scalars())


def dirty_scans(session: Session, *, case_id: int, since: datetime,
                scan_pk: int | None = None) -> list[DirtyScan]:
    """Counted scans of the case's scopes (not sealed containers) finished after
    ``since`` that found manifest items (only scan ``scan_pk``, if given)."""
    present = (select(func.count()).where(ScanItem.scan_pk == ScanRecord.id)
               .correlate(ScanRecord).scalar_subquery())
    rows = session.execute(
        select(ScanRecord.scope_id, ScanRecord.scan_id, present)
        .join(Scope, Scope.id == ScanRecord.scope_id)
        .where(queries.counted_scans(case_id), ScanRecord.finished_at > since,
               Scope.kind != ScopeKind.SEALED_CONTAINER.value, present > 0,
               *([ScanRecord.id == scan_pk] if scan_pk is not None else []))
        .order_by(ScanRecord.finished_at, ScanRecord.id)).all()
    return [DirtyScan(scope_id, scan_id, int(n)) for scope_id, scan_id, n in rows]


def pending(session: Session, obligation: Obligation) -> Pending | None:
    """What a custody-until obligation in force still lacks; None if nothing (it is about
    to be discharged) or if it is not in force."""
    if (obligation.kind != ObligationKind.CUSTODY_UNTIL.value
            or obligation.state != ObligationState.IN_FORCE.value):
        return None
    since = destroyed_at(session, obligation.id)
    if since is None:
        return Pending(NOT_STATED)
    missing = unshown_scopes(session, case_id=obligation.case_id, since=since)
    if missing or not _other_scopes(session, obligation.case_id):
        # No scope declared at all shows nothing either.
        return Pending(NOT_SHOWN, tuple(missing))
    if dirty_scans(session, case_id=obligation.case_id, since=since):
        return Pending(NOT_SHOWN)  # the breach check is about to breach it
    return None


def settle(session: Session, *, case_id: int, now: datetime) -> list[int]:
    """Discharge each custody-until obligation of the case in force whose destruction is
    now shown; the obligations discharged. Derived, not logged: a replay of the log calls
    this at the same points and gets the same states."""
    rows = session.execute(select(Obligation).where(
        Obligation.case_id == case_id, Obligation.kind == ObligationKind.CUSTODY_UNTIL.value,
        Obligation.state == ObligationState.IN_FORCE.value)
        .order_by(Obligation.id)).scalars().all()
    done = []
    for row in rows:
        if destroyed_at(session, row.id) is not None and pending(session, row) is None:
            row.state, row.state_changed_at = ObligationState.DISCHARGED.value, now
            done.append(row.id)
    if done:
        session.flush()
    return done
