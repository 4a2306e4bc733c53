"""Retention of the service's own data (PIPL Art. 56): once a case has been closed for the
retention period (``DELETION_AUDIT_CASE_DATA_RETENTION_DAYS``, 3 years by default),
``tick(now)`` deletes its item rows (manifest items, scan items, deleted items) and the
salts and personal parts (digests, pseudonyms, locations) of its restricted events. The
log's leaves — the commitments — stay, as do public events, so the log still verifies;
the verdict is then the last signed one, and nothing recomputes it. The purge is logged as
a ``case`` event and guarded by one row per case."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.bundles.rederive import case_events
from deletion_audit.cases.service import log_event
from deletion_audit.core.leaves import EVENT_TYPES, Disclosure
from deletion_audit.db import Database
from deletion_audit.models import (
    Case,
    CasePurge,
    CaseStatus,
    DeletedItem,
    Event,
    Manifest,
    ManifestItem,
    ScanItem,
    ScanRecord,
    VerdictMark,
)

log = logging.getLogger(__name__)

# What a purged restricted event keeps: enough to find it as the case's and to say what
# it was, nothing naming items, people or places.
_KEPT = ("caseId", "case", "action", "at")
RESTRICTED = tuple(t for t, d in EVENT_TYPES.items() if d is Disclosure.RESTRICTED)


def due_purges(session: Session, *, retention: timedelta, now: datetime) -> list[int]:
    purged = select(CasePurge.case_id)
    return list(session.execute(
        select(Case.id).where(Case.status == CaseStatus.CLOSED.value,
                              Case.status_changed_at <= now - retention,
                              Case.id.not_in(purged))
        .order_by(Case.id)).scalars())


def purge_case(session: Session, *, case_id: int, retention: timedelta,
               now: datetime) -> dict[str, int] | None:
    """Purge the case if it is (still) due; the rows deleted, by kind, or None."""
    case = session.get(Case, case_id, with_for_update=True)
    if case is None or case.status != CaseStatus.CLOSED.value \
            or case.status_changed_at is None or case.status_changed_at > now - retention:
        return None
    if session.get(CasePurge, case_id) is not None:
        return None
    manifests = select(Manifest.id).where(Manifest.case_id == case_id)
    scans = select(ScanRecord.id).where(ScanRecord.case_id == case_id)
    counts = {
        "manifestItems": _deleted(session, delete(ManifestItem).where(
            ManifestItem.manifest_id.in_(manifests))),
        "scanItems": _deleted(session, delete(ScanItem).where(ScanItem.scan_pk.in_(scans))),
        "deletedItems": _deleted(session, delete(DeletedItem).where(
            DeletedItem.case_id == case_id)),
    }
    events = session.execute(
        select(Event).where(case_events(case_id), Event.type.in_(RESTRICTED),
                            Event.salt.is_not(None))).scalars().all()
    for event in events:
        event.salt = None
        event.body = _kept(event.body)
    counts["events"] = len(events)
    # Nothing recomputes the verdict from rows that are gone: the last signed one stands.
    session.execute(delete(VerdictMark).where(VerdictMark.case_id == case_id))
    session.add(CasePurge(case_id=case_id, closed_at=case.status_changed_at, purged_at=now,
                          counts=counts))
    session.flush()
    log_event(session, "case", {
        "action": "purged", "caseId": case_id, "retentionDays": retention.days,
        "closedAt": case.status_changed_at.isoformat().replace("+00:00", "Z"), **counts,
    }, now=now)
    return counts


def _deleted(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _kept(body: dict[str, Any]) -> dict[str, Any]:
    return {**{k: body[k] for k in _KEPT if k in body}, "purged": True}


def run(db: Database, *, retention: timedelta, now: datetime) -> list[int]:
    """Purge every case due at ``now``; the case ids done by this call."""
    with db.read() as session:
        due = due_purges(session, retention=retention, now=now)
    done: list[int] = []
    for case_id in due:
        try:
            with db.write() as session:
                if purge_case(session, case_id=case_id, retention=retention,
                              now=now) is not None:
                    done.append(case_id)
        except IntegrityError:
            log.info("purged concurrently", extra={"case_id": case_id})
    return done
