"""Housekeeping: imports that died half-way and uploads nobody finished."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from deletion_audit.clock import Clock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.evidence.manifests import sweep_abandoned
from deletion_audit.models import ManifestUpload

log = logging.getLogger(__name__)

UPLOAD_LIFETIME = timedelta(days=1)


UPLOADS = "uploads"
"""Where resumable manifest uploads are kept, under the data directory."""


def upload_path(settings: Settings, upload_id: str) -> Path:
    return settings.data_dir / UPLOADS / upload_id


def sweep_uploads(db: Database, settings: Settings, *, now: datetime) -> int:
    """Remove uploads nobody touched for a day, with their files."""
    with db.write() as session:
        stale = session.execute(select(ManifestUpload).where(
            ManifestUpload.touched_at < now - UPLOAD_LIFETIME)).scalars().all()
        for row in stale:
            upload_path(settings, row.id).unlink(missing_ok=True)
            session.delete(row)
    return len(stale)


def housekeeping(db: Database, settings: Settings, clock: Clock) -> None:
    now = clock.now()
    imports = sweep_abandoned(db, now=now)
    uploads = sweep_uploads(db, settings, now=now)
    if imports or uploads:
        log.info("removed %d abandoned imports and %d stale uploads", imports, uploads)
