"""Prometheus metrics. Log gauges are read from the database at scrape time, so every
instance reports the same truth whichever of them integrates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from deletion_audit.clock import Clock
from deletion_audit.db import Database
from deletion_audit.models import LogCheckpoint, LogLeaf, LogState


class _LogCollector(Collector):
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock.now()
        with self.db.read() as s:
            size = s.execute(select(LogState.size).where(LogState.id == 1)).scalar() or 0
            pending, oldest = s.execute(
                select(func.count(), func.min(LogLeaf.created_at)).where(LogLeaf.idx.is_(None))
            ).one()
            signed = s.execute(select(func.max(LogCheckpoint.signed_at))).scalar()
        yield GaugeMetricFamily("deletion_audit_log_size", "Integrated leaves.", value=size)
        yield GaugeMetricFamily(
            "deletion_audit_log_pending_leaves", "Leaves waiting for the integrator.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "deletion_audit_integrator_lag_seconds",
            "Age of the oldest leaf not yet integrated (0 when none waits).",
            value=_age(now, oldest),
        )
        yield GaugeMetricFamily(
            "deletion_audit_checkpoint_age_seconds", "Age of the newest signed checkpoint.",
            value=_age(now, signed),
        )


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    # SQLite's aggregate bypasses the column type: normalise naive values as UTC.
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class Metrics:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_LogCollector(db, clock))
        self.refusals = Counter(
            "deletion_audit_refusals", "Refused requests and statements, by reason.",
            ["reason"], registry=self.registry,
        )
