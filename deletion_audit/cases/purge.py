"""Retention of the service's own data (PIPL Art. 56): once a case has been closed for the
retention period (``DELETION_AUDIT_CASE_DATA_RETENTION_DAYS``, 3 years by default),
``tick(now)`` deletes or strips every row and file of the case that holds its item
digests, pseudonyms, salts or locations, inventoried table by table:

- ``manifest_items`` (digests, pseudonyms, sources), ``manifest_nodes`` (subtree hashes of
  them, only good for proofs that can no longer be made) and ``manifest_filters`` (the
  Bloom filter answers "is this digest in?"): deleted;
- ``manifest_uploads`` and their files under ``uploads/`` (a manifest file as uploaded):
  deleted;
- ``scan_items`` and ``deleted_items``: deleted;
- ``attestations.envelope`` (scan and deletion statements list digests; a custody one
  names a container digest): emptied — the row keeps its statement id and log leaf, and
  the event its ``envelopeSha256``;
- ``refusals``: envelope emptied, body cut to its code and statement id;
- ``onsite_sessions``: the item lists and the salt of their commitment; the co-signed
  record (counts and the commitment) stays, so the signatures still verify;
- ``scopes.location_codes`` (the locations the manifest's sources name): emptied;
- restricted ``events``: salt dropped, body cut to what says which case and what it was
  (and the statement and envelope digests it named);
- the archived court bundles under ``archive/<case>/`` (every envelope and salt): deleted,
  their SHA-256 kept in ``case_archives`` so a copy held elsewhere can still be matched.

What stays is what the log's commitments and the last signed verdict need: leaves, public
events, statement ids and envelope digests, the manifest's root and counts, verdicts,
judgments and reviews (their findings name scopes and counts only; an unannounced one's
salt opens a commitment to an instant, published when it opened, not to anything
personal), and a session's co-signed record with its place (the witnesses signed it). The log still
verifies; the verdict is the last signed one, and nothing recomputes it. The purge is
logged as a ``case`` event and guarded by one row per case. Files are deleted within the
transaction, before it commits: if the commit fails, the next tick purges the rows of
files that are already gone, which is where they were going.

The storage engines keep deleted bytes of their own: on SQLite the purge zeroes freed
pages (``secure_delete``) and empties the write-ahead log after it commits; PostgreSQL
keeps dead tuples until ``VACUUM`` reclaims them and its WAL segments until they are
recycled, which its operator's routine maintenance (autovacuum) does."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.bundles.rederive import case_events
from deletion_audit.cases.service import log_event
from deletion_audit.core.leaves import EVENT_TYPES, Disclosure
from deletion_audit.db import Database
from deletion_audit.evidence.tasks import UPLOADS
from deletion_audit.models import (
    Attestation,
    Case,
    CaseArchive,
    CasePurge,
    CaseStatus,
    DeletedItem,
    Event,
    Manifest,
    ManifestFilter,
    ManifestItem,
    ManifestNode,
    ManifestUpload,
    OnSiteSession,
    Refusal,
    ScanItem,
    ScanRecord,
    Scope,
    VerdictMark,
)

log = logging.getLogger(__name__)

# What a purged restricted event keeps: enough to find it as the case's and to say what
# it was, nothing naming items, people or places.
_KEPT = ("caseId", "case", "action", "at", "statementId", "envelopeSha256")
RESTRICTED = tuple(t for t, d in EVENT_TYPES.items() if d is Disclosure.RESTRICTED)


def due_purges(session: Session, *, retention: timedelta, now: datetime) -> list[int]:
    purged = select(CasePurge.case_id)
    return list(session.execute(
        select(Case.id).where(Case.status == CaseStatus.CLOSED.value,
                              Case.status_changed_at <= now - retention,
                              Case.id.not_in(purged))
        .order_by(Case.id)).scalars())


def purge_case(session: Session, *, case_id: int, retention: timedelta, now: datetime,
               data_dir: Path | None = None) -> dict[str, int] | None:
    """Purge the case if it is (still) due; the rows deleted or stripped, by kind, or None.
    Its files go too when given the data directory they live under."""
    case = session.get(Case, case_id, with_for_update=True)
    if case is None or case.status != CaseStatus.CLOSED.value \
            or case.status_changed_at is None or case.status_changed_at > now - retention:
        return None
    if session.get(CasePurge, case_id) is not None:
        return None
    if session.get_bind().dialect.name == "sqlite":
        # Freed pages keep deleted rows' bytes unless SQLite zeroes them (per connection).
        session.execute(text("PRAGMA secure_delete = ON"))
    manifests = select(Manifest.id).where(Manifest.case_id == case_id)
    scans = select(ScanRecord.id).where(ScanRecord.case_id == case_id)
    counts = {
        "manifestItems": _deleted(session, delete(ManifestItem).where(
            ManifestItem.manifest_id.in_(manifests))),
        "scanItems": _deleted(session, delete(ScanItem).where(ScanItem.scan_pk.in_(scans))),
        "deletedItems": _deleted(session, delete(DeletedItem).where(
            DeletedItem.case_id == case_id)),
        **_strip_rows(session, case_id=case_id, manifests=manifests, data_dir=data_dir),
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


def _strip_rows(session: Session, *, case_id: int, manifests: Any,
                data_dir: Path | None) -> dict[str, int]:
    """Everything else of the case that names items, people, places or salts (see the
    module's inventory)."""
    uploads = list(session.execute(select(ManifestUpload.id).where(
        ManifestUpload.case_id == case_id)).scalars())
    archived = [p for p in session.execute(select(CaseArchive.path).where(
        CaseArchive.case_id == case_id, CaseArchive.path.is_not(None))).scalars()
        if p is not None]
    counts = {
        "manifestNodes": _deleted(session, delete(ManifestNode).where(
            ManifestNode.manifest_id.in_(manifests))),
        "manifestFilters": _deleted(session, delete(ManifestFilter).where(
            ManifestFilter.manifest_id.in_(manifests))),
        "manifestUploads": _deleted(session, delete(ManifestUpload).where(
            ManifestUpload.case_id == case_id)),
        "envelopes": _deleted(session, update(Attestation).where(
            Attestation.case_id == case_id).values(envelope=b"")),
        "refusals": _strip_refusals(session, case_id),
        "sessions": _deleted(session, update(OnSiteSession).where(
            OnSiteSession.case_id == case_id,
            OnSiteSession.items.is_not(None) | OnSiteSession.items_salt.is_not(None))
            .values(items=None, items_salt=None)),
        "scopes": _deleted(session, update(Scope).where(Scope.case_id == case_id)
                           .values(location_codes=[])),
    }
    files = 0
    if data_dir is not None:
        for path in [data_dir / UPLOADS / u for u in uploads] + [data_dir / a for a in archived]:
            if path.is_file():
                path.unlink()
                files += 1
    counts["files"] = files
    return counts


def _strip_refusals(session: Session, case_id: int) -> int:
    rows = session.execute(select(Refusal).where(Refusal.case_id == case_id)).scalars().all()
    for row in rows:
        row.envelope = b""
        row.body = {"code": row.code, "statement_id": row.statement_id, "purged": True}
    session.flush()
    return len(rows)


def _deleted(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _kept(body: dict[str, Any]) -> dict[str, Any]:
    return {**{k: body[k] for k in _KEPT if k in body}, "purged": True}


def run(db: Database, *, retention: timedelta, now: datetime,
        data_dir: Path | None = None) -> list[int]:
    """Purge every case due at ``now`` (and its files under ``data_dir``, if given); the
    case ids done by this call."""
    with db.read() as session:
        due = due_purges(session, retention=retention, now=now)
    done: list[int] = []
    for case_id in due:
        try:
            with db.write() as session:
                if purge_case(session, case_id=case_id, retention=retention, now=now,
                              data_dir=data_dir) is not None:
                    done.append(case_id)
        except IntegrityError:
            log.info("purged concurrently", extra={"case_id": case_id})
    if done and db.dialect == "sqlite":
        _checkpoint(db)
    return done


def _checkpoint(db: Database) -> None:
    """Copy the purge into the database file and empty the write-ahead log, whose older
    frames still hold the pages as they were before it. Best effort: a reader holding an
    old snapshot keeps its frames until the next checkpoint."""
    with db.engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.info("write-ahead log not emptied after a purge: a reader is still open")
