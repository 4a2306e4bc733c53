"""Registering a manifest (cases issue targets), on SQLite and PostgreSQL.

- A 1,000,000-entry manifest registers in at most 15 s, peak RSS at most 300 MB, printed
  beside the engine's own bulk load of the same digests in the same run (`sqlite3 .import`,
  PostgreSQL `COPY`).
- With `--leaves 26000000 --engine postgresql`: the 26-million-entry case, in the same
  bounded memory; the filter's size and its share of the time are printed.

The registration runs in a child process so its peak RSS is its own, not the generator's.

Run from the repository root:
    .venv/bin/python -m benchmarks.manifest_register [--leaves N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import FixedClock, SystemClock
from deletion_audit.core import dsse, keys
from deletion_audit.core import manifest as mf
from deletion_audit.core.statements import statement_bytes
from deletion_audit.db import make_engine
from deletion_audit.migrations import upgrade
from tests.support.evidence import examiner_key
from tests.support.log import make_log_env
from tests.support.world import make_world

KINDS = ("image", "image", "image", "video", "record")


def generate(n: int, seed: int = 5) -> Iterator[mf.ManifestEntry]:
    rng = random.Random(seed)
    for i in range(n):
        yield mf.ManifestEntry(
            digest=rng.randbytes(32).hex(), kind=KINDS[i % 5], size=rng.randrange(1, 1 << 23),
            subject=hashlib.sha256(b"p%d" % rng.randrange(505)).hexdigest(),
            source="SH-QP/NAS1" if i % 3 else "SH-QP/CLOUD",
        )


def make_manifest(directory: Path, n: int, case: str, key: object) -> tuple[Path, Path, float]:
    path = directory / "manifest.jsonl"
    header = mf.ManifestHeader(case=case, count=0, created_at="2026-03-02T01:30:00Z",
                               examiner_key_id=keys.key_id(key.public_key()))  # type: ignore[attr-defined]
    t = time.perf_counter()
    written = mf.write_manifest(path, header, generate(n))
    statement = mf.statement_for(written.summary, path.name)
    envelope = dsse.sign(statement_bytes(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)  # type: ignore[arg-type]
    env_path = directory / "manifest.dsse.json"
    env_path.write_bytes(envelope.to_json())
    return path, env_path, time.perf_counter() - t


def child(url: str, manifest: str, envelope: str, case_id: int) -> None:
    """Register and print the elapsed time and this process's peak RSS as JSON."""
    from deletion_audit.core import bloom
    from deletion_audit.db import Database
    from deletion_audit.evidence.manifests import examiner_keys, register_manifest
    from deletion_audit.models import Case

    # Instrumentation: how much of the import the filter takes (built batch by batch).
    spent = [0.0]
    add = bloom.BloomBuilder.add

    def timed_add(self: bloom.BloomBuilder, digests: object) -> None:
        t = time.perf_counter()
        add(self, digests)
        spent[0] += time.perf_counter() - t

    bloom.BloomBuilder.add = timed_add  # type: ignore[method-assign]
    db = Database(url)
    with db.read() as session:
        case_number = session.get_one(Case, case_id).case_number
        found = examiner_keys(session, case_id)
    start = time.perf_counter()
    with open(manifest, "rb") as stream:
        result = register_manifest(
            db, case_id=case_id, case_number=case_number, stream=stream,
            envelope=json.loads(Path(envelope).read_text()), examiner_keys=found,
            registered_by=None, now=SystemClock().now(),
        )
    elapsed = time.perf_counter() - start
    from sqlalchemy import func, select

    from deletion_audit.models import ManifestFilter

    with db.read() as session:
        filter_bytes = session.scalar(select(func.sum(func.length(ManifestFilter.data))))
    print(json.dumps({"seconds": elapsed, "count": result.count, "rss_mb": peak_rss_mb(),
                      "filter_mb": (filter_bytes or 0) / 2**20, "filter_s": spent[0]}))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries that over fork and exec, so
    a child would report the parent's peak (the manifest generator's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_sqlite(manifest: Path, directory: Path) -> float:
    csv = directory / "digests.csv"
    with manifest.open("rb") as src, csv.open("wb") as out:
        next(src)
        for line in src:
            out.write(line[11:75] + b"\n")
    db = directory / "baseline.sqlite3"
    start = time.perf_counter()
    subprocess.run(["sqlite3", str(db), "CREATE TABLE d (digest TEXT);",
                    f".import {csv} d"], check=True)
    return time.perf_counter() - start


def baseline_postgres(manifest: Path, url: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_digests (digest BYTEA)")
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY bench_digests (digest) FROM STDIN") as copy, \
                manifest.open("rb") as src:
            next(src)
            for line in src:
                copy.write(b"\\\\x" + line[11:75] + b"\n")
        return time.perf_counter() - start


def run(engine: str, url: str, directory: Path, n: int) -> None:
    upgrade(make_engine(url))
    env = make_log_env(directory / engine, url, FixedClock(SystemClock().now()))
    world = make_world(env)
    key = examiner_key(world)
    env.db.dispose()
    manifest, envelope, made = make_manifest(directory, n, world.case_number, key)
    print(f"\n== {engine}: {n:,} entries ({manifest.stat().st_size / 1e6:.0f} MB file, "
          f"written and signed in {made:.1f} s) ==")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.manifest_register", "--child", url, str(manifest),
         str(envelope), str(world.case_id)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if engine == "sqlite":
        base = baseline_sqlite(manifest, directory)
        what = "sqlite3 .import of the digests"
    else:
        base = baseline_postgres(manifest, url)
        what = "COPY of the digests"
    print(f"register: {result['seconds']:.1f} s (target <= 15 s at 1,000,000); {what}: "
          f"{base:.1f} s; ratio {result['seconds'] / base:.1f}")
    print(f"register peak RSS: {result['rss_mb']:.0f} MB (target <= 300 MB); "
          f"{result['count'] / result['seconds']:,.0f} entries/s")
    print(f"filter: {result['filter_mb']:.1f} MiB (target <= 64 MB at 26,000,000), built in "
          f"{result['filter_s']:.1f} s of the import (target <= 60 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    parser.add_argument("--child", nargs=4, metavar=("URL", "MANIFEST", "ENVELOPE", "CASE"))
    args = parser.parse_args()
    if args.child:
        url, manifest, envelope, case_id = args.child
        child(url, manifest, envelope, int(case_id))
        return
    run_engines(args.engine,
                lambda engine, url, directory: run(engine, url, directory, args.leaves))


if __name__ == "__main__":
    main()
