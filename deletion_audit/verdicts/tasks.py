"""The debounced verdict job: a fixed APScheduler job; each case in its own transaction,
so one case's failure neither blocks nor undoes the others. A late or repeated run is
harmless: it does whatever is due at ``now``.

A verdict states the log size it is ``as_of``, and the bundle verifier re-derives it from
exactly the events below that size. So every pending leaf is integrated and the verdict
computed from one snapshot that sees exactly those events. On PostgreSQL that is one
transaction at ``REPEATABLE READ``: an event committed while it runs is neither integrated
nor read — it waits for the next version; a concurrent integrator makes PostgreSQL refuse
the transaction (a serialization failure), the case keeps its marks and the next run
computes it afresh. On SQLite the leaves are integrated under the write lock and a read
snapshot is taken while it is held; the computation then runs with the lock released, so
agents' statements are not held up for it (:func:`_recompute_beside_writers`)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from deletion_audit.clock import Clock
from deletion_audit.db import Database
from deletion_audit.log import service as log
from deletion_audit.log.identity import LogKeys
from deletion_audit.models import LogState
from deletion_audit.verdicts import service, summaries
from deletion_audit.verdicts.engine import compute_report

logger = logging.getLogger(__name__)

_SERIALIZATION_FAILURE = "40001"


def _one_snapshot(db: Database, session: Session) -> None:
    """Make ``session``'s transaction read one snapshot (call before its first statement)."""
    if db.dialect == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def integrate_all(session: Session, *, keys: LogKeys, clock: Clock) -> int:
    """Integrate every leaf pending in ``session``'s snapshot; the log size after."""
    while True:
        result = log.integrate(session, signer=keys.log_signer, origin=keys.origin,
                               now=clock.now())
        if result.checkpoint is None:
            return result.size


def _recompute_beside_writers(
    db: Database, *, case_id: int, mark_ids: list[int], keys: LogKeys, clock: Clock
) -> None:
    """SQLite: computing a large case's verdict takes long, and a write transaction holds
    the database's one write lock — every statement arriving would wait for it. So the
    leaves are integrated under the lock, and a read snapshot is taken while it is held:
    in WAL mode that snapshot sees exactly what was committed before the integration (no
    writer can commit while the lock is ours), which is exactly the events of the leaves it
    integrated. The verdict is computed from that snapshot with the lock released, then
    signed, logged and stored under the lock again, as of the size integrated."""
    now = clock.now()
    with db.read() as snapshot:
        with db.write() as session:
            session.connection()  # BEGIN IMMEDIATE: from here no one else commits
            snapshot.execute(select(LogState.size)).all()  # the snapshot starts here
            log_size = integrate_all(session, keys=keys, clock=clock)
        report = compute_report(snapshot, case_id=case_id, now=now)
    with db.write() as session:
        # Summaries first: logged before the verdict version they accompany.
        summaries.issue_missing(session, case_id=case_id, service_key=keys.service_key,
                                now=now)
        service.recompute(session, case_id=case_id, mark_ids=mark_ids,
                          service_key=keys.service_key, now=now, computed=(report, log_size))


def recompute_verdicts(db: Database, *, keys: LogKeys, clock: Clock) -> list[int]:
    """Recompute every case that is due; return their ids."""
    with db.read() as session:
        due = service.cases_due(session, now=clock.now())
    done = []
    for case_id, mark_ids in due:
        try:
            if db.dialect == "sqlite" and ":memory:" not in db.url:
                _recompute_beside_writers(db, case_id=case_id, mark_ids=mark_ids, keys=keys,
                                          clock=clock)
                done.append(case_id)
                continue
            with db.write() as session:
                _one_snapshot(db, session)
                integrate_all(session, keys=keys, clock=clock)
                # Summaries first: logged before the verdict version they accompany.
                summaries.issue_missing(session, case_id=case_id, service_key=keys.service_key,
                                        now=clock.now())
                service.recompute(session, case_id=case_id, mark_ids=mark_ids,
                                  service_key=keys.service_key, now=clock.now())
        except IntegrityError:
            # Another instance numbered the same version first; its marks stay for the next
            # run, which computes afresh.
            logger.info("verdict version taken concurrently", extra={"case_id": case_id})
            continue
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _SERIALIZATION_FAILURE:
                raise
            logger.info("log integrated concurrently; verdict next run",
                        extra={"case_id": case_id})
            continue
        done.append(case_id)
    if done:
        logger.info("recomputed verdicts", extra={"cases": done})
    return done
