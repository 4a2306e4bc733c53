"""The integrator job: run until no leaf is pending, keep the outside checkpoint current."""

from __future__ import annotations

import logging

from deletion_audit.clock import Clock
from deletion_audit.config import Settings
from deletion_audit.core.checkpoint import parse_checkpoint_text
from deletion_audit.core.errors import CoreError
from deletion_audit.db import Database
from deletion_audit.log import service
from deletion_audit.log.identity import LogKeys, record_checkpoint

log = logging.getLogger(__name__)


def _recorded_size(settings: Settings) -> int:
    path = settings.checkpoint_path
    if not path.exists():
        return 0
    try:
        text = path.read_text("utf-8").split("\n\n", 1)[0] + "\n"
        return parse_checkpoint_text(text).size
    except (CoreError, UnicodeDecodeError, OSError):
        return 0


def integrate_pending(db: Database, *, keys: LogKeys, settings: Settings, clock: Clock) -> int:
    """Integrate every pending leaf in batches; return how many were integrated."""
    total = 0
    while True:
        with db.write() as session:
            result = service.integrate(
                session, signer=keys.log_signer, origin=keys.origin,
                now=clock.now(), batch=settings.integrate_batch,
            )
            note = result.checkpoint
            if note is None and result.size > _recorded_size(settings):
                # Integrated in another transaction (the verdict job integrates before it
                # computes): bring the file up to the latest signed checkpoint.
                latest = service.latest_checkpoint(session)
                note = latest.note if latest is not None else None
        total += result.integrated
        if note is not None and result.size > _recorded_size(settings):
            # Written after commit: a crash in between leaves the file behind, never ahead.
            record_checkpoint(settings.checkpoint_path, note)
        if result.integrated < settings.integrate_batch:
            if total:
                log.info("integrated leaves", extra={"count": total, "size": result.size})
            return total
