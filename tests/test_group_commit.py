"""Group commit (deletion_audit/group_commit.py): the jobs waiting share one transaction,
each in its own savepoint; every job is answered after the commit; a failed batch writes
none of its jobs. On both engines, with real rows."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from deletion_audit.db import Database
from deletion_audit.group_commit import PER_JOB, GroupCommit
from deletion_audit.models import LogLeaf

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


class Abort(BaseException):
    """Stands for what no job catches (the process being stopped mid-batch)."""


def _leaf(session: Session) -> bytes:
    """Write one row; its key."""
    key = secrets.token_bytes(32)
    session.execute(insert(LogLeaf), {"leaf_hash": key, "data": b"x", "created_at": NOW})
    return key


def _stored(db: Database, keys: list[bytes]) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(LogLeaf)
                         .where(LogLeaf.leaf_hash.in_(keys))).scalar_one()


def _blocked_first(writer: GroupCommit, release: threading.Event,
                   jobs: list[Callable[[Session], bytes]],
                   items: list[object] | None = None) -> list[Future[bytes]]:
    """Submit a first job that waits for ``release``, then ``jobs`` (with ``items`` for the
    writer's ``bulk``): those queue meanwhile and make the next batch, in one transaction."""
    started = threading.Event()

    def first(session: Session) -> bytes:
        started.set()
        release.wait(timeout=30)
        return _leaf(session)

    futures = [writer.submit(first)]
    started.wait(timeout=30)
    futures += [writer.submit(job, item)
                for job, item in zip(jobs, items or [None] * len(jobs), strict=True)]
    release.set()
    return futures


class TestGroupCommit:
    def test_the_jobs_waiting_share_one_transaction_and_are_answered_after_its_commit(
        self, db: Database
    ) -> None:
        writer = GroupCommit(db)
        batches: set[uuid.UUID] = set()
        visible_before_commit: list[int] = []
        answered_before_commit: list[bool] = []
        futures: list[Future[bytes]] = []

        def job(session: Session) -> bytes:
            key = _leaf(session)
            visible_before_commit.append(_stored(db, [key]))  # read on another connection
            answered_before_commit.append(any(f.done() for f in futures[1:]))
            batches.add(session.info.setdefault("batch", uuid.uuid4()))
            return key

        futures += _blocked_first(writer, threading.Event(), [job, job, job])
        keys = [f.result(timeout=30) for f in futures]
        assert len(batches) == 1
        assert visible_before_commit == [0, 0, 0]
        assert answered_before_commit == [False, False, False]
        assert _stored(db, keys) == 4

    def test_a_job_that_raises_is_rolled_back_alone(self, db: Database) -> None:
        writer = GroupCommit(db)
        written: list[bytes] = []

        def failing(session: Session) -> bytes:
            written.append(_leaf(session))
            raise ValueError("refused")

        futures = _blocked_first(writer, threading.Event(), [_leaf, failing, _leaf])
        with pytest.raises(ValueError, match="refused"):
            futures[2].result(timeout=30)
        kept = [futures[i].result(timeout=30) for i in (0, 1, 3)]
        assert _stored(db, kept) == 3
        assert _stored(db, written) == 0

    def test_a_batch_stopped_midway_writes_none_of_its_jobs(self, db: Database) -> None:
        writer = GroupCommit(db)
        written: list[bytes] = []

        def writes(session: Session) -> bytes:
            key = _leaf(session)
            written.append(key)
            return key

        def stopped(_session: Session) -> bytes:
            raise Abort

        futures = _blocked_first(writer, threading.Event(), [writes, stopped, writes])
        futures[0].result(timeout=30)  # the first batch, alone, committed
        for future in futures[1:]:
            with pytest.raises(Abort):
                future.result(timeout=30)
        assert len(written) == 1  # the job before the stop had written its row ...
        assert _stored(db, written) == 0  # ... and it was rolled back with the batch
        assert _stored(db, [writer.submit(_leaf).result(timeout=30)]) == 1  # still writing

    def test_a_failing_prologue_fails_the_batch(self, db: Database) -> None:
        def prologue(_session: Session) -> None:
            raise RuntimeError("the database is read-only")

        writer = GroupCommit(db, prologue=prologue)
        with pytest.raises(RuntimeError, match="read-only"):
            writer.submit(_leaf).result(timeout=30)

    def test_a_job_given_up_while_it_waited_is_not_run(self, db: Database) -> None:
        writer = GroupCommit(db)
        ran: list[bytes] = []

        def job(session: Session) -> bytes:
            ran.append(_leaf(session))
            return ran[-1]

        release = threading.Event()
        started = threading.Event()

        def first(session: Session) -> bytes:
            started.set()
            release.wait(timeout=30)
            return _leaf(session)

        blocking = writer.submit(first)
        started.wait(timeout=30)
        waiting = writer.submit(job)
        assert waiting.cancel()
        release.set()
        blocking.result(timeout=30)
        assert writer.submit(job).result(timeout=30) == ran[0]
        assert len(ran) == 1

    def test_the_epilogue_sees_what_the_batchs_jobs_returned_in_their_transaction(
        self, db: Database
    ) -> None:
        seen: list[tuple[list[bytes], int]] = []

        def epilogue(session: Session, keys: list[bytes]) -> None:
            seen.append((keys, session.execute(select(func.count()).select_from(LogLeaf)
                                               .where(LogLeaf.leaf_hash.in_(keys)))
                         .scalar_one()))

        writer = GroupCommit(db, epilogue=epilogue)

        def failing(session: Session) -> bytes:
            _leaf(session)
            raise ValueError("refused")

        futures = _blocked_first(writer, threading.Event(), [_leaf, failing, _leaf])
        kept = [futures[i].result(timeout=30) for i in (0, 1, 3)]
        assert seen == [([kept[0]], 1), ([kept[1], kept[2]], 2)]

    def test_jobs_handed_over_while_the_writer_settles_join_its_batch(
        self, db: Database
    ) -> None:
        # settle() runs once a job waits and before the batch is taken: the three jobs
        # submitted in it are in the first batch, with the one that woke the writer.
        batches: list[int] = []
        handed: list[Future[bytes]] = []

        def settle() -> None:
            if not handed:
                handed.extend(writer.submit(_leaf) for _ in range(3))

        writer = GroupCommit(db, settle=settle,
                             epilogue=lambda _s, values: batches.append(len(values)))
        first = writer.submit(_leaf).result(timeout=30)
        keys = [first, *(f.result(timeout=30) for f in handed)]
        assert batches[0] == 4
        assert _stored(db, keys) == 4

    def test_a_closed_writer_takes_no_more_jobs(self, db: Database) -> None:
        writer = GroupCommit(db)
        writer.close()
        with pytest.raises(RuntimeError, match="closed"):
            writer.submit(_leaf)


class TestBulk:
    """Jobs submitted with an item are answered by the batch's ``bulk`` function in the
    plain pass; the rest, and what it leaves (PER_JOB), run their own work after it in
    the same transaction. If ``bulk`` raises, the batch is run again job by job."""

    def _queued(self, writer: GroupCommit, jobs: list[tuple[Callable[[Session], bytes],
                                                           object]]) -> list[Future[bytes]]:
        return _blocked_first(writer, threading.Event(), [work for work, _ in jobs],
                              [item for _, item in jobs])

    def test_bulk_answers_its_items_and_the_other_jobs_run_after_it_in_its_transaction(
        self, db: Database
    ) -> None:
        order: list[str] = []
        batches: set[uuid.UUID] = set()

        def bulk(session: Session, items: list[str]) -> list[object]:
            batches.add(session.info.setdefault("batch", uuid.uuid4()))
            keys = [secrets.token_bytes(32) for _ in items]
            session.execute(insert(LogLeaf), [
                {"leaf_hash": k, "data": b"x", "created_at": NOW} for k in keys])
            order.append("bulk:" + ",".join(items))
            return [PER_JOB if item == "alone" else key for item, key in zip(items, keys,
                                                                             strict=True)]

        def work(name: str) -> Callable[[Session], bytes]:
            def run(session: Session) -> bytes:
                batches.add(session.info.setdefault("batch", uuid.uuid4()))
                order.append(name)
                return _leaf(session)
            return run

        writer = GroupCommit(db, bulk=bulk)
        futures = self._queued(writer, [(work("a"), "a"), (work("plain"), None),
                                        (work("alone"), "alone"), (work("b"), "b")])
        keys = [f.result(timeout=30) for f in futures]
        assert order == ["bulk:a,alone,b", "plain", "alone"]
        assert len(batches) == 1
        assert _stored(db, keys) == 5

    def test_a_bulk_that_raises_is_rolled_back_and_each_job_runs_alone(
        self, db: Database
    ) -> None:
        written: list[bytes] = []

        def bulk(session: Session, items: list[str]) -> list[object]:
            written.extend(_leaf(session) for _ in items)
            raise ValueError("a row of the set is refused")

        def failing(session: Session) -> bytes:
            written.append(_leaf(session))
            raise ValueError("refused")

        writer = GroupCommit(db, bulk=bulk)
        futures = self._queued(writer, [(_leaf, "a"), (failing, "b"), (_leaf, "c")])
        with pytest.raises(ValueError, match=r"^refused$"):
            futures[2].result(timeout=30)
        kept = [futures[i].result(timeout=30) for i in (0, 1, 3)]
        assert _stored(db, kept) == 3
        assert _stored(db, written) == 0
