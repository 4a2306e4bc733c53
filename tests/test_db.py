"""The embedded database's one-writer rule across threads and processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import text

from deletion_audit.db import Database

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
