"""Follow-up reviews in ``tick(now)`` (issue 6), on SQLite and PostgreSQL.

One case with N planned reviews spread over a year (rows written directly), and no agent
bound (so a review opens with no challenge and closes ``no_response``):

- a tick with nothing due while N reviews wait: what every tick costs;
- a late tick opening the R reviews due by then, each in its own transaction (logged,
  with its notification queued);
- the tick closing those R reviews, each judged, signed with the service key, logged.

Run from the repository root:
    .venv/bin/python -m benchmarks.reviews_tick [--reviews N] [--due R] [--engine ...]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import FixedClock
from deletion_audit.db import make_engine
from deletion_audit.migrations import upgrade
from deletion_audit.models import Review, ReviewKind, ReviewState
from deletion_audit.notifications import service as notifications
from deletion_audit.scheduling.tick import tick
from tests.conftest import T0
from tests.support.log import make_log_env
from tests.support.world import make_world

YEAR = timedelta(days=365)


def run(n: int, due: int, engine_name: str, url: str, directory: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = make_log_env(directory, url, FixedClock(T0))
    world = make_world(env)
    with env.db.write() as session:
        notifications.add_recipient(session, case_id=world.case_id, role="prosecutor",
                                    channel="email", address="zhang@procuratorate.example",
                                    created_by=None, development=True, now=T0)
        # Reviews i < due fall within the first day; the rest over the following year.
        session.add_all(Review(
            case_id=world.case_id, kind=ReviewKind.ANNOUNCED.value,
            state=ReviewState.PLANNED.value,
            due_at=T0 + timedelta(seconds=i) if i < due else T0 + YEAR * i / n + 2 * timedelta(
                days=1), response_hours=72, created_at=T0) for i in range(n))
    key = env.ctx.keys.service_key

    started = time.perf_counter()
    report = tick(env.db, service_key=key, now=T0 - timedelta(seconds=1))
    idle = time.perf_counter() - started
    assert report.reviews.opened == []

    started = time.perf_counter()
    report = tick(env.db, service_key=key, now=T0 + timedelta(days=1))
    opening = time.perf_counter() - started
    assert len(report.reviews.opened) == due, len(report.reviews.opened)

    started = time.perf_counter()
    report = tick(env.db, service_key=key, now=T0 + timedelta(days=1, hours=72))
    closing = time.perf_counter() - started
    assert len(report.reviews.closed) == due, len(report.reviews.closed)
    env.db.dispose()

    print(f"[{engine_name}] tick with nothing due, {n:,} reviews waiting: "
          f"{idle * 1000:.1f} ms")
    print(f"[{engine_name}] late tick opening {due:,} reviews: {opening:.2f} s "
          f"({due / opening:,.0f}/s)")
    print(f"[{engine_name}] tick closing {due:,} reviews (signed, logged): {closing:.2f} s "
          f"({due / closing:,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reviews", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    args = parser.parse_args()
    run_engines(args.engine, lambda name, url, d: run(args.reviews, args.due, name, url, d))


if __name__ == "__main__":
    main()
