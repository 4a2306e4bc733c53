"""The agent's SQL source over a 26,000,000-row table: bounded memory (agent issue target).

A table of ``--rows`` rows (id, a 48-byte blob) is loaded with the engine's own bulk path,
then a child process runs the agent's scan of it as a SQL scope — the streaming source, the
RFC 6962 scan root, a filter probe per row — and reports its own peak RSS (VmHWM; Linux
carries ``ru_maxrss`` over fork and exec) and its rate, beside the time of a plain
``SELECT`` streaming the same rows through the same driver in the same run.

Run from the repository root:
    .venv/bin/python -m benchmarks.agent_sql_scope [--rows N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._engines import ENGINES, run_engines

BATCH = 100_000


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load(engine: str, url: str, rows: int) -> float:
    rng = random.Random(3)
    start = time.perf_counter()
    if engine == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("CREATE TABLE faces (id INTEGER PRIMARY KEY, img BLOB)")
        for off in range(0, rows, BATCH):
            conn.executemany("INSERT INTO faces VALUES (?, ?)",
                             ((off + i, rng.randbytes(48)) for i in range(min(BATCH, rows - off))))
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE faces (id BIGINT PRIMARY KEY, img BYTEA)")
            with conn.cursor() as cur, cur.copy("COPY faces (id, img) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((i, rng.randbytes(48)))
    return time.perf_counter() - start


def child(url: str) -> None:
    """Scan the table as the agent does; print seconds, rows and this process's peak RSS."""
    from deletion_audit.core.bloom import BloomFilter, build_reference
    from deletion_audit_agent.config import SqlAccess
    from deletion_audit_agent.scanning import tally
    from deletion_audit_agent.sources import Throttle
    from deletion_audit_agent.sources.sql import SqlSource

    source = SqlSource(SqlAccess(url=url, table="faces", key_columns=("id",),
                                 content_column="img", encoding="raw", filter=None),
                       throttle=Throttle(None))
    # A real filter to probe (of a small manifest: the probe costs the same 13 bit reads).
    manifest = [random.Random(9).randbytes(32) for _ in range(1000)]
    bloom = BloomFilter.from_bytes(build_reference(manifest, b"\0" * 32))
    start = time.perf_counter()
    seen = tally(source.scan(), bloom.might_contain, b"k" * 32)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "rows": seen.objects, "rss_mb": peak_rss_mb()}))


def baseline(url: str) -> float:
    """The same rows streamed by a bare SELECT through the same driver, nothing else."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    start = time.perf_counter()
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(
            sa.text("SELECT id, img FROM faces ORDER BY id"))
        for _ in result:
            pass
    engine.dispose()
    return time.perf_counter() - start


def run(engine: str, url: str, _directory: Path, rows: int) -> None:
    loaded = load(engine, url, rows)
    print(f"\n== {engine}: {rows:,} rows (loaded in {loaded:.0f} s) ==")
    out = subprocess.run([sys.executable, "-m", "benchmarks.agent_sql_scope", "--child", url],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    base = baseline(url)
    print(f"agent scan: {result['seconds']:.1f} s ({result['rows'] / result['seconds']:,.0f} "
          f"rows/s) over {result['rows']:,} rows; bare streaming SELECT: {base:.1f} s; "
          f"ratio {result['seconds'] / base:.1f}")
    print(f"agent scan peak RSS: {result['rss_mb']:.0f} MB (bounded: independent of rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=26_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    parser.add_argument("--child", metavar="URL")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    run_engines(args.engine,
                lambda engine, url, directory: run(engine, url, directory, args.rows))


if __name__ == "__main__":
    main()
