"""An initialised log on a test database, with a clock the test controls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deletion_audit.app import build_context
from deletion_audit.clock import FixedClock
from deletion_audit.config import Settings
from deletion_audit.context import AppContext
from deletion_audit.db import Database
from deletion_audit.log.identity import init_log
from deletion_audit.log.tasks import integrate_pending


@dataclass
class LogEnv:
    settings: Settings
    db: Database
    clock: FixedClock
    ctx: AppContext

    def integrate(self) -> int:
        return integrate_pending(self.db, keys=self.ctx.keys, settings=self.settings,
                                 clock=self.clock)


def make_log_env(data_dir: Path, db_url: str, clock: FixedClock) -> LogEnv:
    settings = Settings(environment="test", data_dir=data_dir, db_url=db_url)
    db = Database(db_url)
    with db.write() as session:
        init_log(session, settings=settings, now=clock.now())
    ctx = build_context(settings, db=db, clock=clock)
    env = LogEnv(settings=settings, db=db, clock=clock, ctx=ctx)
    env.integrate()
    return env
