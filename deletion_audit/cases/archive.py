"""Archiving a closed case's court bundle: the closure writes a due row in its own
transaction; ``tick(now)`` exports each due one to ``archive/<case>/court-<time>.zip``
under the data directory (mode 0600), written beside its target and renamed, then marks
the row done. The file's name comes from the row (the closure's instant), so an export
repeated after a crash, or by a second instance, lands on the same file."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.service import export_bundle, prepare_export
from deletion_audit.clock import Clock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.errors import AuditError
from deletion_audit.log.identity import LogKeys
from deletion_audit.models import CaseArchive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archiver:
    """What the export needs besides the database: the keys, the data directory, the
    clock that stamps the checkpoint."""

    keys: LogKeys
    settings: Settings
    clock: Clock


def request_archive(session: Session, *, case_id: int, by: int | None,
                    now: datetime) -> CaseArchive:
    row = CaseArchive(case_id=case_id, due_at=now, requested_by=by, attempts=0)
    session.add(row)
    session.flush()
    return row


def archive_path(row: CaseArchive) -> Path:
    """Relative to the data directory."""
    stamp = row.due_at.strftime("%Y%m%dT%H%M%SZ")
    return Path("archive") / str(row.case_id) / f"court-{stamp}.zip"


def _write(db: Database, archiver: Archiver, case_id: int, target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # 0600
    try:
        with os.fdopen(fd, "w+b") as fh:
            export_bundle(db, keys=archiver.keys, case_id=case_id, tier=Tier.COURT,
                          now=archiver.clock.now(), out=fh)
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(0)
            sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256


def run(db: Database, archiver: Archiver, *, now: datetime) -> list[int]:
    """Export every archive due at ``now``; the ids done by this call."""
    with db.read() as session:
        due = [(int(i), int(c)) for i, c in session.execute(
            select(CaseArchive.id, CaseArchive.case_id).where(
                CaseArchive.done_at.is_(None), CaseArchive.due_at <= now)
            .order_by(CaseArchive.due_at, CaseArchive.id))]
    done: list[int] = []
    for archive_id, case_id in due:
        with db.read() as session:
            relative = archive_path(session.get_one(CaseArchive, archive_id))
        try:
            prepare_export(db, keys=archiver.keys, settings=archiver.settings,
                           clock=archiver.clock, case_id=case_id)
            sha256 = _write(db, archiver, case_id, archiver.settings.data_dir / relative)
        except (AuditError, OSError) as exc:
            log.warning("archive failed", extra={"case_id": case_id, "error": str(exc)})
            with db.write() as session:
                row = session.get_one(CaseArchive, archive_id, with_for_update=True)
                row.attempts += 1
                row.last_error = str(exc)[:2000]
            continue
        with db.write() as session:
            row = session.get_one(CaseArchive, archive_id, with_for_update=True)
            if row.done_at is not None:
                continue  # another instance finished it meanwhile (same file)
            row.attempts += 1
            row.done_at, row.path, row.sha256 = now, relative.as_posix(), sha256
            row.last_error = None
        done.append(archive_id)
    return done
