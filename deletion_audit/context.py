"""What a running instance holds: settings, database, clock, keys, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from deletion_audit.clock import Clock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.log.identity import LogKeys
from deletion_audit.metrics import Metrics


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    keys: LogKeys
    metrics: Metrics
