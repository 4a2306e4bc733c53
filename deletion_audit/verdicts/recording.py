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

from deletion_audit import deferred
from deletion_audit.core.predicates import (
    CustodyStatementPredicate,
    DeidentifyPredicate,
    DeletionPredicate,
    ScanPredicate,
    VendorPredicate,
)
from deletion_audit.evidence import bulk
from deletion_audit.models import (
    Attestation,
    DeletedItem,
    DeletionRecord,
    Obligation,
    ObligationState,
    PersonStatement,
    ScanItem,
    ScanRecord,
    VerdictMark,
)
from deletion_audit.verdicts import custody

PersonPredicate = VendorPredicate | CustodyStatementPredicate | DeidentifyPredicate

# Logged event types that are inputs of the verdict (besides statements, recorded here):
# logging one marks its case (cases/service.py ``log_event``).
VERDICT_INPUTS = frozenset({
    "scope", "data-flow", "binding", "obligation", "acceptance", "key-revocation",
})


_DELETED_COLUMNS = ("attestation_id", "digest", "case_id", "scope_id")
_RECORD_COLUMNS = ("attestation_id", "case_id", "scope_id", "agent_id", "grade", "count",
                   "deleted_at")


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


# Built once: on ingest's path, constructing a statement costs more than running it.
_INSERT_DELETION_RECORD = insert(_table(DeletionRecord))
# Several rows: RETURNING makes SQLAlchemy send them as one multi-row INSERT (its
# "insertmanyvalues"); without it psycopg's executemany runs one INSERT a row in the
# PostgreSQL server.
_INSERT_DELETION_RECORDS = insert(_table(DeletionRecord)).returning(
    _table(DeletionRecord).c.attestation_id)
_INSERT_MARK = insert(_table(VerdictMark))


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
            challenge_id=challenge_id, parts=0, finished=False, ages_reported=False,
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
        row.ages_reported = predicate.ages is not None
    session.flush()
    _insert_ignoring_duplicates(session, _table(ScanItem), [
        {"scan_pk": row.id, "digest": d} for d in _digests(predicate.present_digests)])
    return row


def record_deletion(
    session: Session, *, attestation: Attestation, predicate: DeletionPredicate
) -> None:
    assert attestation.scope_id is not None  # noqa: S101 - ingest binds every statement
    digests = _digests(predicate.deleted_digests)
    session.execute(_INSERT_DELETION_RECORD, {
        "attestation_id": attestation.id, "case_id": attestation.case_id,
        "scope_id": attestation.scope_id, "agent_id": attestation.agent_id,
        "grade": predicate.grade, "count": len(digests), "deleted_at": predicate.deleted_at})
    # Straight to the driver (COPY on PostgreSQL): the ORM's per-row work was most of the
    # cost of a 10,000-digest statement, and a replay of a case records millions.
    bulk.insert_digests(session, _table(DeletedItem).name, _DELETED_COLUMNS, digests,
                        before=(attestation.id,),
                        after=(attestation.case_id, attestation.scope_id))


def record_deletions(
    session: Session, deletions: Sequence[tuple[Attestation, DeletionPredicate]]
) -> None:
    """:func:`record_deletion` for several statements at once: one insert of their records
    and one of all their items."""
    if not deletions:
        return
    records: list[dict[str, Any]] = []
    items: list[tuple[int, bytes, int, int]] = []
    for attestation, predicate in deletions:
        assert attestation.scope_id is not None  # noqa: S101 - ingest binds every statement
        digests = _digests(predicate.deleted_digests)
        records.append({
            "attestation_id": attestation.id, "case_id": attestation.case_id,
            "scope_id": attestation.scope_id, "agent_id": attestation.agent_id,
            "grade": predicate.grade, "count": len(digests),
            "deleted_at": predicate.deleted_at})
        ids = (attestation.id, attestation.case_id, attestation.scope_id)
        items.extend((ids[0], d, ids[1], ids[2]) for d in digests)
    waiting = deferred.gathered(session)
    if waiting is not None:
        waiting.add(_table(DeletionRecord), _RECORD_COLUMNS,
                    [tuple(r[c] for c in _RECORD_COLUMNS) for r in records])
    else:
        session.connection().execute(_INSERT_DELETION_RECORDS, records).all()
    # The items straight to the driver in any case: on PostgreSQL a COPY, cheaper per row
    # than the gathered statement's arrays (deferred.py).
    bulk.insert_rows(session, _table(DeletedItem).name, _DELETED_COLUMNS, items)


def mark_changed(session: Session, *, case_id: int, now: datetime) -> None:
    """Ask for a new verdict of ``case_id``: an append, never an update, and never skipped
    because a mark is waiting — the job deletes exactly the marks it read, so a mark
    written while it computes survives for the next run."""
    waiting = deferred.gathered(session)
    if waiting is not None:
        waiting.add(_table(VerdictMark), ("case_id", "marked_at"), [(case_id, now)])
        return
    session.execute(_INSERT_MARK, {"case_id": case_id, "marked_at": now})


def record_statement(
    session: Session, *, attestation: Attestation,
    predicate: ScanPredicate | DeletionPredicate, challenge_id: int | None, now: datetime,
    mark: bool = True,
) -> None:
    """Record an accepted agent statement's items and mark its case for a new verdict
    (``mark=False``: the caller marks it, once for the statements of its transaction)."""
    if isinstance(predicate, ScanPredicate):
        record_scan(session, attestation=attestation, predicate=predicate,
                    challenge_id=challenge_id, now=now)
        if predicate.last:
            # A clean scan may be the last piece a custody obligation's discharge waited for.
            custody.settle(session, case_id=attestation.case_id, now=now)
    else:
        record_deletion(session, attestation=attestation, predicate=predicate)
    if mark:
        mark_changed(session, case_id=attestation.case_id, now=now)


def person_statement_effect(
    obligation: Obligation | None, predicate: PersonPredicate
) -> ObligationState | None:
    """The obligation state a person's statement moves its obligation to, if any.

    - custody statements change nothing here: a ``destroyed`` (or ``sanitised``) one
      discharges its ``custody-until`` obligation only together with clean scans of every
      other scope after it (verdicts/custody.py :func:`settle`, run after this);
    - deidentify ``fail``: the examiner found the published dataset breaking its masking
      rules, so the obligation is breached (the verdict blocks on it), also one the
      prosecutor had discharged;
    - deidentify ``pass`` is recorded only: DESIGN leaves discharging a deidentify
      obligation to the prosecutor, who reads the examiner's check and sets the state.

    A waived obligation stays waived (a waiver is final), and no statement undoes a
    breach.
    """
    if obligation is None:
        return None
    state = ObligationState(obligation.state)
    # A later check that fails breaches a list the prosecutor had discharged too: the
    # dataset is published, and it no longer meets the rules.
    if (isinstance(predicate, DeidentifyPredicate) and predicate.result == "fail"
            and state in (ObligationState.IN_FORCE, ObligationState.DISCHARGED)):
        return ObligationState.BREACHED
    return None


def _outcome_and_time(predicate: PersonPredicate) -> tuple[str, datetime]:
    if isinstance(predicate, VendorPredicate):
        return predicate.status, predicate.stated_at
    if isinstance(predicate, CustodyStatementPredicate):
        return predicate.action, predicate.occurred_at
    return predicate.result, predicate.checked_at


def record_person_statement(
    session: Session, *, attestation: Attestation, predicate: PersonPredicate, user_id: int,
    key_id: str, party_id: int, data_flow_id: int | None, obligation_id: int | None,
    now: datetime,
) -> PersonStatement:
    """Record an accepted statement of a person (vendor, custody, deidentify): what it
    concerns, its effect on the obligation it names, and a mark for a new verdict.

    Every argument is in the statement's logged ``attestation`` event (``userId``,
    ``keyId``, ``partyId``, ``dataFlowId``, ``obligationId``, its time ``at``) or in its
    envelope, so a replay of the log calls this same function and gets the same rows."""
    outcome, stated_at = _outcome_and_time(predicate)
    row = PersonStatement(
        attestation_id=attestation.id, case_id=attestation.case_id, user_id=user_id,
        key_id=key_id, party_id=party_id, predicate_type=predicate.PREDICATE_TYPE,
        data_flow_id=data_flow_id, obligation_id=obligation_id, outcome=outcome,
        stated_at=stated_at)
    session.add(row)
    obligation = (session.get(Obligation, obligation_id, with_for_update=True)
                  if obligation_id is not None else None)
    effect = person_statement_effect(obligation, predicate)
    if obligation is not None and effect is not None:
        obligation.state, obligation.state_changed_at = effect.value, now
    session.flush()
    if isinstance(predicate, CustodyStatementPredicate):
        custody.settle(session, case_id=attestation.case_id, now=now)
    mark_changed(session, case_id=attestation.case_id, now=now)
    return row
