"""The jobs' runner: APScheduler 3 with fixed jobs in its in-memory job store (nothing is
pickled into the database), run only while this instance holds the scheduler's lease.

Every instance renews its claim at a third of the lease; the one that holds it runs
``tick(now)``, the log integrator, the verdict job, the notification sender and the
housekeeping; the others stand by and take over within a lease once the leader stops
renewing (killed, hung, cut off). Leadership is also bounded locally by the monotonic
clock, so a leader whose renewals stall stops running jobs before a standby can start.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from deletion_audit.cases.archive import Archiver
from deletion_audit.context import AppContext
from deletion_audit.evidence import tasks as evidence_tasks
from deletion_audit.log.tasks import integrate_pending
from deletion_audit.notifications.sender import send_pending
from deletion_audit.scheduling import lease
from deletion_audit.scheduling.tick import tick
from deletion_audit.verdicts.tasks import recompute_verdicts

log = logging.getLogger(__name__)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _real_now() -> datetime:
    # The lease and the sender's attempts are on the transport clock, never the domain's.
    return datetime.now(UTC)


class JobRunner:
    def __init__(self, ctx: AppContext, *, holder: str | None = None) -> None:
        self.ctx = ctx
        self.holder = holder or default_holder()
        self.ttl = timedelta(seconds=ctx.settings.scheduler_lease_seconds)
        self._valid_until = 0.0
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone="UTC")

    @property
    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    def renew(self) -> bool:
        """Take or renew the lease; True while this instance leads."""
        with self._lock:
            was = self.is_leader
            started = time.monotonic()
            try:
                leads = lease.acquire(self.ctx.db, holder=self.holder, now=_real_now(),
                                      ttl=self.ttl)
            except Exception:
                log.exception("cannot reach the database to renew the scheduler's lease")
                leads = False
            # Counted from before the request: the row may have been written at its start.
            self._valid_until = started + self.ttl.total_seconds() if leads else 0.0
            if leads != was:
                log.info("scheduler %s", "leading" if leads else "standing by",
                         extra={"holder": self.holder})
            return leads

    def _leading(self, job: Callable[..., Any]) -> Callable[..., None]:
        def run(**kwargs: Any) -> None:
            if self.is_leader:
                job(**kwargs)
        run.__name__ = getattr(job, "__name__", "job")
        return run

    def _add(self, name: str, job: Callable[..., Any], seconds: float,
             **kwargs: Any) -> None:
        self._scheduler.add_job(
            self._leading(job), "interval", seconds=seconds, kwargs=kwargs, id=name,
            max_instances=1, coalesce=True, misfire_grace_time=None)

    def _tick(self) -> None:
        tick(self.ctx.db, service_key=self.ctx.keys.service_key, now=self.ctx.clock.now(),
             archiver=Archiver(keys=self.ctx.keys, settings=self.ctx.settings,
                               clock=self.ctx.clock),
             retention=timedelta(days=self.ctx.settings.case_data_retention_days))

    def _send(self) -> None:
        send_pending(self.ctx.db, settings=self.ctx.settings, now=_real_now())

    def start(self) -> None:
        ctx, settings = self.ctx, self.ctx.settings
        self.renew()  # at once, so a lone instance leads from its first second
        self._scheduler.add_job(self.renew, "interval", seconds=self.ttl.total_seconds() / 3,
                                id="lease", max_instances=1, coalesce=True,
                                misfire_grace_time=None)
        self._add("integrator", integrate_pending, settings.integrate_interval_seconds,
                  db=ctx.db, keys=ctx.keys, settings=settings, clock=ctx.clock)
        self._add("housekeeping", evidence_tasks.housekeeping, 600,
                  db=ctx.db, settings=settings, clock=ctx.clock)
        self._add("verdicts", recompute_verdicts, 5, db=ctx.db, keys=ctx.keys, clock=ctx.clock)
        self._add("tick", self._tick, settings.tick_interval_seconds)
        self._add("sender", self._send, settings.send_interval_seconds)
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=True)
        if self.is_leader:
            self._valid_until = 0.0
            lease.release(self.ctx.db, holder=self.holder, now=_real_now())
