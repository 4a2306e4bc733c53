"""Engines and sessions for the two supported databases.

SQLite (embedded default) runs in WAL mode with one writer at a time: write transactions
start with ``BEGIN IMMEDIATE`` so they queue on the write lock up front instead of failing
when a read snapshot turns out to be stale. Within a process they queue on a lock of the
engine's first, taken at that ``BEGIN`` and released when the connection goes back to the
pool: SQLite's busy handler waits by sleeping in growing steps, so threads that meet on its
lock lose up to tens of milliseconds each (ingest from 16 clients ran at a fifth of its
rate). Processes sharing the file (``serve --workers``) queue on a ``flock`` beside it; the
busy timeout still covers any other program. PostgreSQL is production.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_HOLDS_WRITE_LOCK = "deletion_audit.holds_write_lock"


class _WriterLock:
    """One writer at a time: threads of this process queue on a lock, processes sharing the
    database file (``serve --workers``) on an advisory ``flock`` of a file beside it — both
    wake the next writer sooner than SQLite's busy handler, whose sleeps grow to 100 ms.

    A process that finds the file locked waits in the kernel (a blocking ``flock``), which
    wakes it as soon as the holder lets go; polling in sleeps instead let one process's
    writer wait out several of the other's transactions. The blocking call runs in a helper
    thread so that the writer still gives up after ``timeout`` seconds, as SQLite would."""

    def __init__(self, database: str | None,
                 timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}.writer-lock" if database else None
        self._fd: int | None = None
        self._timeout = timeout

    def acquire(self) -> None:
        deadline = time.monotonic() + self._timeout
        if not self._threads.acquire(timeout=self._timeout):
            raise TimeoutError("timed out waiting for the database's write lock")
        if self._path is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            # The waiter owns the descriptor until it hands it back holding the lock; if
            # this writer stops waiting, the waiter closes it (which lets go of the lock
            # once got) and the next writer opens the file afresh.
            fd, self._fd = self._fd, None
            self._fd = _FlockWaiter(fd).wait(max(deadline - time.monotonic(), 0))
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class _FlockWaiter:
    """A blocking ``flock`` in a thread of its own, which the caller waits for with a
    timeout. The descriptor is the waiter's: handed back with the lock held, or closed by
    the waiter if the lock could not be got or the caller stopped waiting (closing lets go
    of a lock got after the caller gave up)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._state = threading.Lock()
        self._done = threading.Event()
        self._got = False
        self._abandoned = False
        self._error: OSError | None = None
        threading.Thread(target=self._run, name="writer-lock", daemon=True).start()

    def _run(self) -> None:
        error: OSError | None = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            error = exc
        with self._state:
            self._error = error
            self._got = error is None and not self._abandoned
            if not self._got:
                os.close(self._fd)
        self._done.set()

    def wait(self, timeout: float) -> int:
        """The descriptor, holding the lock; TimeoutError if ``timeout`` passed first, or
        what the ``flock`` raised."""
        try:
            self._done.wait(timeout)
        finally:
            with self._state:
                self._abandoned = not self._got
        if self._got:
            return self._fd
        if self._error is not None:
            raise self._error
        raise TimeoutError("timed out waiting for the database's write lock "
                           "(another process holds it)")


def _configure_sqlite(engine: Engine, database: str | None) -> None:
    write_lock = _WriterLock(database)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get("writer"):
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        # Not a thread-owned lock: a request may begin in one worker thread and commit in
        # another. A nested write in one thread times out as SQLite's own wait would.
        write_lock.acquire()
        conn.info[_HOLDS_WRITE_LOCK] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.info.pop(_HOLDS_WRITE_LOCK, None)
            write_lock.release()
            raise

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # Back in the pool: the transaction has been committed or rolled back.
        if record is not None and record.info.pop(_HOLDS_WRITE_LOCK, False):
            write_lock.release()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, path if path and path != ":memory:" else None)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    """One engine, a read session factory and a write session factory."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(writer=True), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing (not rolling back) ends the transaction without expiring loaded rows, so
        # what a caller read stays usable after the block.
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


T = TypeVar("T")


def padded_batches(rows: Sequence[T], sizes: Sequence[int],
                   filler: T) -> Iterator[tuple[int, list[T]]]:
    """``rows`` in batches of at most ``sizes[-1]`` (ascending sizes), each padded with
    ``filler`` to the smallest size that holds it, with that size: a query with one term a
    row, built once per size, then serves every batch."""
    top = sizes[-1]
    for start in range(0, len(rows), top):
        batch = list(rows[start:start + top])
        size = next(n for n in sizes if n >= len(batch))
        yield size, batch + [filler] * (size - len(batch))
