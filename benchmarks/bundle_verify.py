"""Verifying a large court bundle offline (bundle issue target).

- ``deletion-audit verify`` of a 1,000,000-item court bundle ≤ 10 s (26,000,000 items
  ≤ 15 min in ≤ 1 GiB).

The case is built for real as in benchmarks/verdict_replay.py (manifest import, agent,
1,000,000 deletion claims in 100 signed statements, one clean challenged scan), exported
with the exporter, then verified by the command in a child process, whose wall time and
peak RSS are its own. Baseline measured in the same run: ``unzip -t`` of the same bundle
(inflating and CRC-checking every member) and reading every member with Python's zipfile.

Run from the repository root:
    .venv/bin/python -m benchmarks.bundle_verify [--items N] [--engine sqlite|postgresql|both]
        [--keep PATH]
    .venv/bin/python -m benchmarks.bundle_verify --bundle PATH --log-key KEY   (a kept one)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path

from benchmarks._engines import ENGINES, run_engines
from benchmarks.verdict_replay import PER_STATEMENT, _build_case
from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.service import export_bundle, prepare_export
from deletion_audit.clock import FixedClock, SystemClock
from deletion_audit.db import make_engine
from deletion_audit.migrations import upgrade
from tests.support.log import make_log_env


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str], float]:
    """Wall seconds, the child's own peak RSS (MB) of one command, and the CPU seconds of
    it and its own children (a worker process, the replay's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss of children is the largest of any child so far: report it only if it grew.
    return (elapsed, max(after.ru_maxrss, before.ru_maxrss) / 1024, done,
            _cpu(after) - _cpu(before))


def _read_all(path: Path) -> float:
    started = time.perf_counter()
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            with zf.open(name) as fh:
                while fh.read(1 << 20):
                    pass
    return time.perf_counter() - started


def measure(engine_name: str, url: str, directory: Path, items: int,
            keep: Path | None = None) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    env = make_log_env(directory, url, clock)
    started = time.perf_counter()
    world = _build_case(env, directory, items)
    print(f"[{engine_name}] built the case ({items:,} items, "
          f"{-(-items // PER_STATEMENT)} deletion statements, one clean scan) in "
          f"{time.perf_counter() - started:.1f} s")
    clock.advance(timedelta(minutes=2))
    started = time.perf_counter()
    prepare_export(env.db, keys=env.ctx.keys, settings=env.settings, clock=env.clock,
                   case_id=world.case_id)
    prepared = time.perf_counter() - started
    bundle = directory / "court.zip"
    started = time.perf_counter()
    with bundle.open("wb") as fh:
        export_bundle(env.db, keys=env.ctx.keys, case_id=world.case_id, tier=Tier.COURT,
                      now=env.clock.now(), out=fh)
    exported = time.perf_counter() - started
    vkey = env.ctx.keys.verifier.vkey()
    env.db.dispose()
    print(f"[{engine_name}] export: verdict and checkpoint {prepared:.1f} s, court bundle "
          f"written in {exported:.1f} s ({bundle.stat().st_size / 1e6:.0f} MB)")
    done = verify(engine_name, bundle, vkey)
    if keep is not None:
        shutil.copyfile(bundle, keep)
        print(f"bundle kept at {keep}; log key {vkey}")
    if done.returncode != 0:
        raise SystemExit(1)


def verify(label: str, bundle: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    """Time the command on ``bundle`` beside the same run's baselines; print the figures."""
    unzip = shutil.which("unzip")
    unzip_s = _timed([unzip, "-tq", str(bundle)])[0] if unzip else float("nan")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    read_s = _read_all(bundle)
    seconds, rss, done, cpu = _timed([sys.executable, "-m", "deletion_audit", "verify",
                                      str(bundle), "--log-key", vkey, "--json"])
    report = json.loads(done.stdout)
    print(f"[{label}] verify: exit {done.returncode} ({report['result']}, verdict "
          f"re-derived: {report['verdictRederived']}, problems: {len(report['problems'])}) "
          f"in {seconds:.2f} s, {cpu:.1f} CPU seconds of all its processes (targets: ≤ 10 s "
          f"at 1,000,000 items, ≤ 15 min and ≤ 1 GiB at 26,000,000); peak RSS of the "
          f"largest process {rss:.0f} MB; load average before {load_before}")
    print(f"[{label}] baseline: unzip -t {unzip_s:.2f} s, reading every member with "
          f"zipfile {read_s:.2f} s; ratio verify / unzip -t {seconds / unzip_s:.1f}, "
          f"verify / zipfile read {seconds / read_s:.1f}")
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:])
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="sqlite")
    parser.add_argument("--keep", type=Path, help="copy the bundle here (to profile it)")
    parser.add_argument("--bundle", type=Path,
                        help="verify this kept bundle again instead of building a case")
    parser.add_argument("--log-key", help="the kept bundle's log key (with --bundle)")
    args = parser.parse_args()
    if args.bundle is not None:
        if not args.log_key:
            parser.error("--bundle needs --log-key")
        print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
        if verify("kept", args.bundle, args.log_key).returncode != 0:
            raise SystemExit(1)
        return
    run_engines(args.engine, lambda name, url, d: measure(name, url, d, args.items,
                                                          args.keep))


if __name__ == "__main__":
    main()
