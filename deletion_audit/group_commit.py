"""Group commit: a writer thread that runs the write jobs waiting for it in one transaction.

Each job is isolated from the others: if one raises, the batch is rolled back and run again
with each job in its own SAVEPOINT, so the one that raised is rolled back alone and the
others go on (savepoints cost two statements per job, so the usual batch, where no job
raises, runs without them). Every job is answered only once the transaction has
committed, so an answer always means stored, and a crash before the commit leaves none of
the batch written (nothing is half written: the jobs of a batch are all committed or none
is).

A job may also carry an ``item`` for the batch's ``bulk`` function, which does the work of
several such jobs set-wise (one statement per table for the batch instead of a few per
job) and answers :data:`PER_JOB` for an item it leaves to its job's own ``work``; those
run after it in the same transaction. ``bulk`` runs only in the plain pass: if it raises,
the batch is rolled back and run again with a savepoint per job and each job's ``work``.

Why: on SQLite every write transaction takes the database's one write lock, and under many
concurrent requests each transaction's own cost (``BEGIN IMMEDIATE``, the lock hand-over
between threads, the commit's WAL write) dominated the statement it wrote; one transaction
for the statements that arrived meanwhile pays that once. The writer also keeps the
database work of a request off the web server's thread pool: an ``async`` endpoint awaits
the job's future.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from deletion_audit.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

PER_JOB: Any = object()
"""What ``bulk`` answers for an item it leaves to its job's own ``work``."""

# Bounded so that one transaction (and the write lock) is never held for long, and one
# failed commit answers a bounded number of requests with an error.
MAX_BATCH = 32
# A writer thread with nothing to do for this long ends; the next job starts a new one.
IDLE_SECONDS = 5.0


@dataclass
class _Job(Generic[T]):
    work: Callable[[Session], T]
    item: Any = None
    future: Future[T] = field(default_factory=Future)


class GroupCommit:
    """Runs ``work(session)`` callables for callers in other threads, in batches of up to
    ``max_batch``, one write transaction per batch, each job isolated from the others (see
    the module's description). ``writers`` threads at most take batches at once.

    ``prologue(session)`` runs once at the start of each batch's transaction (e.g. pruning
    rows that expired), ``epilogue(session, values)`` once at its end with what the jobs
    that succeeded returned (e.g. one row for what several jobs changed); if either raises,
    the batch fails. ``bulk(session, items)`` answers, in the plain pass, the jobs
    submitted with an item: a value for each, or :data:`PER_JOB` (see the module).

    ``settle()`` is called once a job is waiting, before the batch is taken: a blocking
    call (bounded by its own time limit) that lets the producers hand over the jobs they
    already hold, so that they join this batch rather than wait for the next."""

    def __init__(self, db: Database, *, writers: int = 1, max_batch: int = MAX_BATCH,
                 prologue: Callable[[Session], None] | None = None,
                 epilogue: Callable[[Session, list[Any]], None] | None = None,
                 bulk: Callable[[Session, list[Any]], list[Any]] | None = None,
                 idle_seconds: float = IDLE_SECONDS,
                 settle: Callable[[], None] | None = None) -> None:
        self._db = db
        self._settle = settle
        self._writers = writers
        self._max_batch = max_batch
        self._prologue = prologue
        self._epilogue = epilogue
        self._bulk = bulk
        self._idle = idle_seconds
        self._queue: queue.SimpleQueue[_Job[Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False

    def submit(self, work: Callable[[Session], T], item: Any = None) -> Future[T]:
        """Queue ``work`` (and ``item``, for ``bulk``); its future is resolved after the
        batch's commit (or with the exception it raised, or the commit's)."""
        job: _Job[T] = _Job(work, item)
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.put(job)
            if self._running < self._writers:
                self._running += 1
                threading.Thread(target=self._run, name="group-commit", daemon=True).start()
        return job.future

    def close(self) -> None:
        """Refuse new jobs; the writer threads finish what is queued and end."""
        with self._lock:
            self._closed = True

    def _take(self) -> list[_Job[Any]] | None:
        try:
            first = self._queue.get(timeout=0 if self._closed else self._idle)
        except queue.Empty:
            with self._lock:
                if self._queue.empty():
                    self._running -= 1
                    return None
            return []
        if self._settle is not None:
            self._settle()
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if batch:
                self._write(batch)

    def _write(self, batch: list[_Job[Any]]) -> None:
        # A job whose caller gave up (its future cancelled) while it waited is not run.
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            try:
                results = self._transaction(batch, isolate=False)
            except _Isolate:
                # A job raised: the batch was rolled back whole; again, a savepoint each.
                results = self._transaction(batch, isolate=True)
        except BaseException as exc:  # the batch failed, rolled back: every job is told
            log.warning("a batch of %d writes failed: %r", len(batch), exc)
            for job in batch:
                job.future.set_exception(exc)
            return
        # Committed: only now is any job answered.
        for job, value, error in results:
            if error is None:
                job.future.set_result(value)
            else:
                job.future.set_exception(error)

    def _transaction(
        self, batch: list[_Job[Any]], *, isolate: bool
    ) -> list[tuple[_Job[Any], Any, Exception | None]]:
        """One transaction for the batch. Without ``isolate`` (the usual case: no job
        raises) the jobs share it plainly; the first that raises rolls it back (_Isolate),
        and the batch is run again with ``isolate``: each job in a savepoint, so one that
        raises is rolled back alone. ``bulk`` runs in the plain pass only."""
        results: list[tuple[_Job[Any], Any, Exception | None]] = []
        with self._db.write() as session:
            if self._prologue is not None:
                self._prologue(session)
            done = {} if isolate else self._run_bulk(session, batch)
            for i, job in enumerate(batch):
                if i in done:
                    results.append((job, done[i], None))
                    continue
                if not isolate:
                    try:
                        results.append((job, job.work(session), None))
                    except Exception:
                        raise _Isolate from None
                    continue
                try:
                    with session.begin_nested():
                        results.append((job, job.work(session), None))
                except Exception as exc:  # handed to the job's caller
                    results.append((job, None, exc))
            if self._epilogue is not None:
                self._epilogue(session, [value for _, value, error in results if error is None])
        return results

    def _run_bulk(self, session: Session, batch: list[_Job[Any]]) -> dict[int, Any]:
        """What ``bulk`` answered, by the job's place in the batch (not PER_JOB)."""
        places = [i for i, job in enumerate(batch) if job.item is not None]
        if self._bulk is None or not places:
            return {}
        try:
            values = self._bulk(session, [batch[i].item for i in places])
        except Exception:
            raise _Isolate from None
        if len(values) != len(places):
            raise RuntimeError(f"bulk answered {len(values)} items of {len(places)}")
        return {i: value for i, value in zip(places, values, strict=True)
                if value is not PER_JOB}


class _Isolate(Exception):
    """A job raised in a batch run without savepoints."""
