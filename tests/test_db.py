"""The embedded database's one-writer rule across threads and processes."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from deletion_audit.db import Database, _WriterLock

WRITER = """
import sys
from sqlalchemy import text
from deletion_audit.db import Database
db = Database(sys.argv[1])
for i in range(int(sys.argv[2])):
    with db.write() as s:
        n = s.execute(text("SELECT count(*) FROM t")).scalar_one()
        s.execute(text("INSERT INTO t (n, who) VALUES (:n, :who)"), {"n": n, "who": sys.argv[3]})
db.dispose()
"""


def _table(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (n INTEGER UNIQUE, who TEXT)")
    conn.close()
    return f"sqlite:///{path}"


class TestOneWriter:
    def test_processes_take_turns_without_lost_or_failed_writes(self, tmp_path: Path) -> None:
        url = _table(tmp_path / "w.sqlite3")
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, "150", who],
                                  stderr=subprocess.PIPE, text=True) for who in "ab"]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        # Each write read the count and added the next number: any overlap of two write
        # transactions would have broken the UNIQUE sequence or lost a row.
        with sqlite3.connect(tmp_path / "w.sqlite3") as conn:
            rows = conn.execute("SELECT n, who FROM t ORDER BY n").fetchall()
        conn.close()
        assert [n for n, _ in rows] == list(range(300))
        assert {who for _, who in rows} == {"a", "b"}
        assert (tmp_path / "w.sqlite3.writer-lock").stat().st_mode & 0o777 == 0o600

    def test_threads_take_turns(self, tmp_path: Path) -> None:
        db = Database(_table(tmp_path / "t.sqlite3"))
        failures: list[BaseException] = []

        def write(who: str) -> None:
            try:
                for _ in range(50):
                    with db.write() as s:
                        n = s.execute(text("SELECT count(*) FROM t")).scalar_one()
                        s.execute(text("INSERT INTO t (n, who) VALUES (:n, :who)"),
                                  {"n": n, "who": who})
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(str(i),)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with db.read() as s:
            count = s.execute(text("SELECT count(*), max(n) FROM t")).one()
        db.dispose()
        assert failures == []
        assert tuple(count) == (400, 399)


class TestLockBetweenProcesses:
    """The lock file's ``flock``, held here through a descriptor of its own as another
    process would hold it (``flock`` locks belong to an open file, not to a process)."""

    @staticmethod
    def _hold(database: Path) -> int:
        fd = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def test_a_waiting_writer_gets_the_lock_once_the_holder_lets_go(
            self, tmp_path: Path) -> None:
        database = tmp_path / "w.sqlite3"
        holder = self._hold(database)
        lock = _WriterLock(str(database), timeout=30)
        got = threading.Event()

        def take() -> None:
            lock.acquire()
            got.set()

        taker = threading.Thread(target=take)
        taker.start()
        try:
            assert not got.wait(0.2)  # blocked while the other holds it
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            os.close(holder)
        assert got.wait(10)
        taker.join()
        lock.release()

    def test_gives_up_at_the_timeout_and_lets_go_of_what_it_got_after(
            self, tmp_path: Path) -> None:
        database = tmp_path / "w.sqlite3"
        holder = self._hold(database)
        lock = _WriterLock(str(database), timeout=0.2)
        try:
            with pytest.raises(TimeoutError, match=r"^timed out waiting for the database's "
                               r"write lock \(another process holds it\)$"):
                lock.acquire()
            waits = [t for t in threading.enumerate() if t.name == "writer-lock"]
            assert len(waits) == 1  # the wait the writer gave up on is still under way
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            os.close(holder)
        # That wait gets the lock once the holder lets go; it must let go of it in turn,
        # for another writer to get it.
        waits[0].join(10)
        assert not waits[0].is_alive()
        other = _WriterLock(str(database), timeout=10)
        other.acquire()
        other.release()
        # And the writer that gave up can take it again (its thread lock was let go too).
        lock.acquire()
        lock.release()
