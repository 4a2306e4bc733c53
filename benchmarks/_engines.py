"""What every database benchmark shares: run one measurement on each chosen engine, each
in a fresh temporary directory (and, for PostgreSQL, a throwaway cluster)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support.postgres import PostgresServer

ENGINES = ["sqlite", "postgresql", "both"]


def run_engines(choice: str, run: Callable[[str, str, Path], None]) -> None:
    """Call ``run(engine, url, directory)`` for SQLite and/or PostgreSQL."""
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if choice in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            run("sqlite", f"sqlite:///{d}/bench.sqlite3", Path(d))
    if choice in ("postgresql", "both"):
        import psycopg

        server = PostgresServer.start()
        try:
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            with tempfile.TemporaryDirectory() as d:
                run("postgresql", server.url("bench"), Path(d))
        finally:
            server.stop()
