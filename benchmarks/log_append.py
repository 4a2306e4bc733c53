"""Log speed and memory (foundation issue targets), on SQLite and PostgreSQL.

- Appending 1,000,000 leaves in batches (append + integrate + checkpoint): >= 5,000 leaves/s,
  printed beside the engine's raw insert rate of the same rows into a bare table.
- Inclusion proof for a random leaf of the 1,000,000-leaf log: median <= 2 ms, printed
  beside a single primary-key SELECT on the same table.
- Peak RSS while integrating, at 100,000 and at 1,000,000 leaves (flat = O(log n) state).

Run from the repository root:  .venv/bin/python -m benchmarks.log_append [--leaves N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import SystemClock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.log import service
from deletion_audit.log.identity import init_log, load_keys
from deletion_audit.log.tasks import integrate_pending
from deletion_audit.migrations import upgrade

BATCH = 10_000


def leaf_batches(n: int) -> Iterator[list[bytes]]:
    """Restricted-event leaves as the service writes them, made batch by batch (the same
    bytes on every call) so the benchmark's own data does not inflate the RSS it reports."""
    rng = random.Random(7)
    for off in range(0, n, BATCH):
        yield [
            json.dumps(
                {"commitment": rng.randbytes(32).hex(), "type": "attestation", "v": 1},
                separators=(",", ":"), sort_keys=True,
            ).encode()
            for _ in range(min(BATCH, n - off))
        ]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_insert_rate(db: Database, n: int) -> float:
    with db.write() as s:
        s.execute(text("CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, h BYTEA, d BYTEA)"
                       if db.dialect == "postgresql" else
                       "CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, h BLOB, d BLOB)"))
    start = time.perf_counter()
    for number, batch in enumerate(leaf_batches(n)):
        off = number * BATCH
        with db.write() as s:
            s.execute(
                text("INSERT INTO bench_raw (id, h, d) VALUES (:id, :h, :d)"),
                [{"id": off + i, "h": hashlib.sha256(b"\0" + d).digest(), "d": d}
                 for i, d in enumerate(batch)],
            )
    return n / (time.perf_counter() - start)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(engine: str, url: str, data_dir: Path, n: int) -> dict[str, float]:
    settings = Settings(environment="test", data_dir=data_dir, db_url=url,
                        integrate_batch=BATCH * 5)
    db = Database(url)
    upgrade(db.engine)
    clock = SystemClock()
    with db.write() as s:
        init_log(s, settings=settings, now=clock.now())
    with db.read() as s:
        keys = load_keys(s, settings)
    raw_rate = raw_insert_rate(db, n)

    rss_at: dict[int, float] = {}
    start = time.perf_counter()
    now = datetime.now(UTC)
    done = 0
    for batch in leaf_batches(n):
        with db.write() as s:
            service.append_leaves(s, batch, now=now)
        done += len(batch)
        if done % (BATCH * 5) == 0 or done >= n:
            integrate_pending(db, keys=keys, settings=settings, clock=clock)
        if done in (n // 10, n):
            rss_at[done] = peak_rss_mb()
    elapsed = time.perf_counter() - start
    rate = n / elapsed

    size = n + 2
    rng = random.Random(11)
    with db.read() as s:
        proof_ms = timed(lambda: service.inclusion_proof(
            s, index=rng.randrange(size), size=size), 300)
        pk_ms = timed(lambda: s.execute(
            text("SELECT d FROM bench_raw WHERE id = :i"), {"i": rng.randrange(n)}).one(), 300)
    db.dispose()
    result = {
        "append_leaves_per_s": rate,
        "raw_insert_rows_per_s": raw_rate,
        "proof_median_ms": statistics.median(proof_ms),
        "pk_select_median_ms": statistics.median(pk_ms),
        **{f"peak_rss_mb_at_{k}": v for k, v in rss_at.items()},
    }
    print(f"\n== {engine}: {n:,} leaves ==")
    print(f"append+integrate: {rate:,.0f} leaves/s (target >= 5,000); raw insert of the same "
          f"rows: {raw_rate:,.0f} rows/s; ratio {rate / raw_rate:.2f}")
    print(f"inclusion proof, random leaf: median {result['proof_median_ms']:.3f} ms "
          f"(target <= 2 ms); primary-key SELECT: {result['pk_select_median_ms']:.3f} ms; "
          f"ratio {result['proof_median_ms'] / result['pk_select_median_ms']:.1f}")
    for k, v in rss_at.items():
        print(f"peak RSS after {k:,} leaves: {v:.0f} MB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    args = parser.parse_args()
    run_engines(args.engine,
                lambda engine, url, directory: run(engine, url, directory, args.leaves))


if __name__ == "__main__":
    main()
