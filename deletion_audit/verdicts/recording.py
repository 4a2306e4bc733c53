"""At ingest: what an accepted statement says about items, recorded set-wise and cheaply.

Called in the statement's own transaction, so a statement is stored with its item rows or
not at all. One multi-row insert per statement (at most 10,000 digests); no verdict is
computed here — the case is marked, and a debounced job recomputes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from deletion_audit.core.predicates import DeletionPredicate, ScanPredicate
from deletion_audit.models import (
    Attestation,
    DeletedItem,
    DeletionRecord,
    ScanItem,
    ScanRecord,
    VerdictMark,
)

# Logged event types that are inputs of the verdict (besides statements, recorded here):
# logging one marks its case (cases/service.py ``log_event``).
VERDICT_INPUTS = frozenset({
    "scope", "data-flow", "binding", "obligation", "acceptance", "key-revocation",
})


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Parts of one scan may repeat a digest: a repeat is the same fact, not an error."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - the project runs on these two engines only
        raise NotImplementedError(dialect)


def _digests(values: Iterable[str]) -> list[bytes]:
    return [bytes.fromhex(d) for d in sorted(set(values))]


def record_scan(
    session: Session, *, attestation: Attestation, predicate: ScanPredicate,
    challenge_id: int | None, now: datetime,
) -> ScanRecord:
    row = session.execute(select(ScanRecord).where(
        ScanRecord.agent_id == attestation.agent_id,
        ScanRecord.scan_id == predicate.scan_id)).scalar_one_or_none()
    if row is None:
        assert attestation.scope_id is not None  # noqa: S101 - ingest binds every statement
        row = ScanRecord(
            case_id=attestation.case_id, scope_id=attestation.scope_id,
            agent_id=attestation.agent_id, scan_id=predicate.scan_id,
            challenge_id=challenge_id, parts=0, finished=False,
            started_at=predicate.started_at, finished_at=predicate.finished_at,
            received_at=now)
        session.add(row)
    row.parts += 1
    row.challenge_id = row.challenge_id or challenge_id
    row.started_at = min(row.started_at, predicate.started_at)
    row.finished_at = max(row.finished_at, predicate.finished_at)
    row.received_at = now
    if predicate.last:
        assert predicate.counts is not None  # noqa: S101 - the schema requires totals
        row.finished, row.coverage = True, predicate.coverage
        row.objects = predicate.counts.objects
    session.flush()
    _insert_ignoring_duplicates(session, _table(ScanItem), [
        {"scan_pk": row.id, "digest": d} for d in _digests(predicate.present_digests)])
    return row


def record_deletion(
    session: Session, *, attestation: Attestation, predicate: DeletionPredicate
) -> None:
    assert attestation.scope_id is not None  # noqa: S101 - ingest binds every statement
    digests = _digests(predicate.deleted_digests)
    session.add(DeletionRecord(
        attestation_id=attestation.id, case_id=attestation.case_id,
        scope_id=attestation.scope_id, agent_id=attestation.agent_id, grade=predicate.grade,
        count=len(digests), deleted_at=predicate.deleted_at))
    session.flush()
    session.execute(insert(DeletedItem), [
        {"attestation_id": attestation.id, "digest": d, "case_id": attestation.case_id,
         "scope_id": attestation.scope_id} for d in digests])


def mark_changed(session: Session, *, case_id: int, now: datetime) -> None:
    """Ask for a new verdict of ``case_id``: an append, never an update, and never skipped
    because a mark is waiting — the job deletes exactly the marks it read, so a mark
    written while it computes survives for the next run."""
    session.execute(insert(VerdictMark).values(case_id=case_id, marked_at=now))


def record_statement(
    session: Session, *, attestation: Attestation,
    predicate: ScanPredicate | DeletionPredicate, challenge_id: int | None, now: datetime,
) -> None:
    """Record an accepted agent statement's items and mark its case for a new verdict."""
    if isinstance(predicate, ScanPredicate):
        record_scan(session, attestation=attestation, predicate=predicate,
                    challenge_id=challenge_id, now=now)
    else:
        record_deletion(session, attestation=attestation, predicate=predicate)
    mark_changed(session, case_id=attestation.case_id, now=now)
