"""``deletion-audit demo`` end to end: wall time at a scale, first with fresh evidence and
then reusing it, with each step's time from the demo's SUMMARY.md, against the target
(5 minutes at scale 0.1 from a fresh clone, the virtual environment included).

    .venv/bin/python -m benchmarks.demo --scale 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 300.0


def run(scale: str, out: Path) -> tuple[float, list[tuple[str, float]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "deletion_audit", "demo", "--scale", scale,
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          check=False)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"the demo failed ({done.returncode}): {done.stderr.strip()}")
    steps = re.findall(r"^\| (.+) \| ([0-9.]+) \|$", (out / "SUMMARY.md").read_text(),
                       re.MULTILINE)
    return wall, [(step, float(seconds)) for step, seconds in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="1", choices=("0.01", "0.1", "1"))
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="demo-bench-")) / "out"
    try:
        fresh, steps = run(args.scale, out)
        reused, steps_reused = run(args.scale, out)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    print(f"demo at scale {args.scale}: {fresh:.0f} s with fresh evidence, {reused:.0f} s "
          f"reusing it (target at scale 0.1: {TARGET_SECONDS:.0f} s including setup)")
    print("| step | fresh (s) | reused (s) |")
    print("|---|---|---|")
    for (step, a), (_, b) in zip(steps, steps_reused, strict=True):
        print(f"| {step} | {a:.1f} | {b:.1f} |")


if __name__ == "__main__":
    main()
