"""The scheduler's ``tick(now)`` (issue 6), on SQLite and PostgreSQL.

- the first tick over N agents silent for a day: 2N judgments (late and dark), each a
  service-signed statement, a logged event and an outbox message, in its own transaction;
- a repeated tick once all are judged (nothing due): what every tick costs while N agents
  stay dark;
- a month of the domain clock in hourly ticks on the same installation.

Printed beside a baseline: N log events appended one per transaction (``append_event``
alone), on the same engine in the same run.

Run from the repository root:
    .venv/bin/python -m benchmarks.scheduler_tick [--agents N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import FixedClock
from deletion_audit.db import make_engine
from deletion_audit.log.service import append_event
from deletion_audit.migrations import upgrade
from deletion_audit.notifications import service as notifications
from deletion_audit.scheduling.tick import tick
from tests.conftest import T0
from tests.support.log import make_log_env
from tests.support.world import add_agent, make_world


def run(n: int, engine_name: str, url: str, directory: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = make_log_env(directory, url, FixedClock(T0))
    world = make_world(env)
    with env.db.write() as session:
        notifications.add_recipient(session, case_id=world.case_id, role="prosecutor",
                                    channel="email", address="zhang@procuratorate.example",
                                    created_by=None, development=True, now=T0)
    for _ in range(n):
        add_agent(world)
    key = env.ctx.keys.service_key

    started = time.perf_counter()
    for i in range(n):
        with env.db.write() as session:
            append_event(session, event_type="challenge", event={"i": i}, now=T0)
    baseline = time.perf_counter() - started

    day = T0 + timedelta(days=1)
    started = time.perf_counter()
    report = tick(env.db, service_key=key, now=day)
    first = time.perf_counter() - started
    assert len(report.judgments) == 2 * n, len(report.judgments)

    started = time.perf_counter()
    assert tick(env.db, service_key=key, now=day).judgments == []
    repeat = time.perf_counter() - started

    started = time.perf_counter()
    for hour in range(24 * 30):
        tick(env.db, service_key=key, now=day + timedelta(hours=hour))
    month = time.perf_counter() - started
    env.db.dispose()

    print(f"[{engine_name}] first tick, {2 * n} judgments: {first:.2f} s "
          f"({2 * n / first:,.0f} judgments/s); baseline {n} log appends one per "
          f"transaction: {baseline:.2f} s ({n / baseline:,.0f}/s)")
    print(f"[{engine_name}] repeated tick, nothing due, {n} dark agents: "
          f"{repeat * 1000:.1f} ms")
    print(f"[{engine_name}] a month in 720 hourly ticks: {month:.2f} s "
          f"({month / 720 * 1000:.1f} ms per tick)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    args = parser.parse_args()
    run_engines(args.engine, lambda name, url, d: run(args.agents, name, url, d))


if __name__ == "__main__":
    main()
