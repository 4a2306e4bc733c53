"""The agent's own overhead on top of the shared hasher, and its memory with a big filter.

- (a) about 2 GB of 1-8 MB files and (b) 100,000 files of 4-16 KB: the agent's scanning core
  (streaming walk, the shared hasher on ``--jobs`` threads, the RFC 6962 scan root, filter
  probes, statement building and signing) against the shared hasher alone over the same
  files, and against the same OpenSSL baselines as benchmarks/manifest_build.py
  (``find | xargs -P2 -n64|-n1000 openssl dgst -sha256``).
- (c) peak RSS of a process that memory-maps the filter of a ``--filter-items`` manifest
  (26,000,000 by default: 64 MB) and scans the small-file tree with it: target <= 150 MB.

No server is involved: what is measured is the agent's local work. Warm page cache, best of
``--runs`` interleaved runs. Run from the repository root:
``.venv/bin/python -m benchmarks.agent_scan`` (smaller ``--big-mb``, ``--small-files`` and
``--filter-items`` for a quick look; building the 26 M filter needs numpy, the server extra).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.manifest_build import MB, baseline, make_big, make_small, timed, warm
from deletion_audit.core import keys
from deletion_audit.core.bloom import BloomFilter
from deletion_audit.core.hashing import (
    SMALL_FILE_AVERAGE,
    hash_file,
    hash_paths,
    process_pool,
)
from deletion_audit.core.predicates import ScanCounts
from deletion_audit_agent.config import DirectoryAccess
from deletion_audit_agent.scanning import tally
from deletion_audit_agent.sources import Throttle
from deletion_audit_agent.sources.base import ordered_map
from deletion_audit_agent.sources.directory import DirectorySource
from deletion_audit_agent.statements import Chain, ScanReport, scan_builders


def hasher_alone(directory: Path, jobs: int) -> None:
    """The shared hasher with the strategy the file sizes call for, nothing else."""
    paths = [str(p) for p in directory.rglob("*") if p.is_file()]
    average = sum(os.path.getsize(p) for p in paths[:64]) / max(1, len(paths[:64]))
    if jobs > 1 and average < SMALL_FILE_AVERAGE:
        with process_pool(jobs) as pool:
            chunks = [paths[i:i + 128] for i in range(0, len(paths), 128)]
            for _ in pool.map(hash_paths, chunks):
                pass
        return
    for _ in ordered_map(hash_file, paths, jobs=jobs):
        pass


def agent_core(directory: Path, jobs: int, bloom: BloomFilter) -> dict[str, int]:
    source = DirectorySource(DirectoryAccess(root=str(directory), exclude=(), narrowed=False),
                             jobs=jobs, throttle=Throttle(None))
    seen = tally(source.scan(), bloom.might_contain, b"k" * 32)
    now = datetime.now(UTC).replace(microsecond=0)
    report = ScanReport(
        scope_id="1", spec_digest="0" * 64, scan_id="bench", challenge="n", present=[],
        skipped_path_hashes=seen.skipped_path_hashes,
        counts=ScanCounts(objects=seen.objects, hashed=seen.hashed,
                          hashed_bytes=seen.hashed_bytes, present=0, skipped=dict(seen.skipped)),
        root=seen.root, coverage="complete", started_at=now, finished_at=now)
    chain = Chain(case_id="1", agent_id="agt_bench", build_digest="0" * 64)
    key = keys.generate()
    for build in scan_builders(key, chain, report):
        build(1, "0" * 64)
    return {"objects": seen.objects, "candidates": len(seen.candidates)}


def make_filter(path: Path, items: int) -> None:
    import numpy as np

    from deletion_audit.core import bloom

    rng = np.random.default_rng(7)
    builder = bloom.BloomBuilder(items, b"\1" * 32)
    step = 1 << 22
    for start in range(0, items, step):
        count = min(step, items - start)
        builder.add(rng.integers(0, 2**63, size=(count, 2), dtype=np.uint64))
    path.write_bytes(builder.to_bytes())


def compare(name: str, directory: Path, per_call: int, runs: int, jobs: int,
            bloom: BloomFilter) -> None:
    files = sum(1 for p in directory.rglob("*") if p.is_file())
    size = warm(directory)
    print(f"\n({name}) {files} files, {size / MB:.0f} MB, page cache warm, {jobs} threads")
    base, alone, core = [], [], []
    for _ in range(runs):
        base.append(timed(lambda: baseline(directory, per_call)))
        alone.append(timed(lambda: hasher_alone(directory, jobs)))
        core.append(timed(lambda: agent_core(directory, jobs, bloom)))
    b, a, c = min(base), min(alone), min(core)
    print(f"  openssl dgst via xargs -P2 -n{per_call}: best {b:.2f} s")
    print(f"  shared hasher alone:                  best {a:.2f} s")
    print(f"  agent scanning core:                  best {c:.2f} s")
    print(f"  agent overhead over the hasher {c / a:.2f}x; agent / openssl {c / b:.2f}x")


# VmHWM, not getrusage: ru_maxrss survives fork and exec, so a child would report the
# parent's peak (the numpy filter build) as its own.
_RSS_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.agent_scan import agent_core
from deletion_audit.core.bloom import BloomFilter
bloom = BloomFilter.open(sys.argv[1])
out = agent_core(Path(sys.argv[2]), int(sys.argv[3]), bloom)
status = Path("/proc/self/status").read_text().split("\\n")
hwm = next(line for line in status if line.startswith("VmHWM:"))
out["peak_rss_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def peak_rss(filter_path: Path, directory: Path, jobs: int) -> None:
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(filter_path), str(directory),
                          str(jobs)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    verdict = "meets" if result["peak_rss_mb"] <= 150 else "MISSES"
    print(f"\n(c) peak RSS scanning {result['objects']} files with a "
          f"{filter_path.stat().st_size / MB:.0f} MB filter memory-mapped: "
          f"{result['peak_rss_mb']:.0f} MB, target <= 150 MB: {verdict} "
          f"({result['candidates']} filter false positives)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=2048)
    parser.add_argument("--small-files", type=int, default=100_000)
    parser.add_argument("--filter-items", type=int, default=26_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="Where to make the data.")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        raise SystemExit("the baseline needs openssl on PATH")
    work = Path(tempfile.mkdtemp(prefix="agent-bench-", dir=args.dir))
    rng = random.Random(2024)
    print(f"data in {work}; {os.cpu_count()} CPUs (shared machines make figures noisy)")
    try:
        start = time.perf_counter()
        make_big(work / "big", args.big_mb, rng)
        make_small(work / "small", args.small_files, rng)
        filter_path = work / "manifest.bloom"
        make_filter(filter_path, args.filter_items)
        print(f"made the data and a {args.filter_items}-item filter in "
              f"{time.perf_counter() - start:.0f} s")
        with BloomFilter.open(filter_path) as bloom:
            compare("a", work / "big", 64, args.runs, args.jobs, bloom)
            compare("b", work / "small", 1000, args.runs, args.jobs, bloom)
        peak_rss(filter_path, work / "small", args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
