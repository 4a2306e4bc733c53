"""Export as the CLI and the API run it: bring the case's signed records up to date, cover
them with a fresh checkpoint, then stream the bundle from one read transaction."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from deletion_audit.bundles.export import ExportRequest, check_exportable, write_bundle
from deletion_audit.bundles.layout import BundleIndex, Tier
from deletion_audit.bundles.rederive import case_events
from deletion_audit.clock import Clock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.log.identity import LogKeys
from deletion_audit.log.tasks import integrate_pending
from deletion_audit.models import Case, CaseArchive, CasePurge, Event, LogLeaf, VerdictMark
from deletion_audit.verdicts import service as verdicts
from deletion_audit.verdicts import summaries

# Chunks in flight between the exporting thread and the response (each at most 1 MiB):
# memory stays bounded whatever the bundle's size.
_QUEUE_CHUNKS = 8
_CHUNK = 1 << 20


def prepare_export(
    db: Database, *, keys: LogKeys, settings: Settings, clock: Clock, case_id: int
) -> None:
    """Bring the case's signed records up to date and cover them with a checkpoint.

    Integrates pending leaves; signs the summaries the case lacks; signs a new verdict
    version if the latest one does not cover every event of the case (a verdict is as of
    the integrated log size, and verify re-derives it from exactly those events); then
    integrates again and signs a checkpoint covering all of it.
    """
    integrate_pending(db, keys=keys, settings=settings, clock=clock)
    with db.write() as session:
        if session.get(Case, case_id) is None:
            raise NotFound(f"no case {case_id}")
        purged = session.get(CasePurge, case_id)
        if purged is not None:
            archived = session.execute(select(CaseArchive.sha256).where(
                CaseArchive.case_id == case_id, CaseArchive.sha256.is_not(None))
                .order_by(CaseArchive.id.desc()).limit(1)).scalar_one_or_none()
            copy = (f"; the court bundle archived when it closed had SHA-256 {archived} "
                    "(a copy held elsewhere can be checked against it)" if archived else "")
            raise Conflict(
                f"case {case_id}'s item rows, salts and archived court bundle were deleted "
                f"on {purged.purged_at:%Y-%m-%d} after its retention period{copy}")
        summaries.issue_missing(session, case_id=case_id, service_key=keys.service_key,
                                now=clock.now())
        latest = verdicts.latest_verdict(session, case_id=case_id)
        if latest is None or _uncovered(session, case_id, latest.as_of_log_size):
            marks = list(session.execute(select(VerdictMark.id).where(
                VerdictMark.case_id == case_id)).scalars())
            verdicts.recompute(session, case_id=case_id, mark_ids=marks,
                               service_key=keys.service_key, now=clock.now())
    integrate_pending(db, keys=keys, settings=settings, clock=clock)


def _uncovered(session: Session, case_id: int, size: int) -> bool:
    """Whether an event of the case (other than verdicts and summaries, which follow the
    verdict's inputs) lies beyond ``size`` or is not integrated yet."""
    return session.execute(
        select(Event.id).join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
        .where(case_events(case_id), Event.type.not_in(("verdict", "summary")),
               or_(LogLeaf.idx.is_(None), LogLeaf.idx >= size)).limit(1)).first() is not None


def export_bundle(
    db: Database, *, keys: LogKeys, case_id: int, tier: Tier, now: datetime, out: IO[bytes],
    consistent_with: Sequence[int] = (),
) -> BundleIndex:
    request = ExportRequest(case_id=case_id, tier=tier, service_key=keys.service_key,
                            now=now, consistent_with=tuple(consistent_with))
    with db.read() as session:
        return write_bundle(session, request, out)


def check_case(db: Database, *, case_id: int, consistent_with: Sequence[int] = ()) -> None:
    """What would fail the export, checked before its response starts."""
    with db.read() as session:
        checkpoint = check_exportable(session, case_id=case_id)
        for first in consistent_with:
            if not 1 <= first <= checkpoint.size:
                raise BadRequest(f"no consistency proof from size {first}: the log's "
                                 f"checkpoint has size {checkpoint.size}")


class _Cancelled(Exception):
    pass


class _QueueWriter:
    """A write-only stream that hands 1 MiB chunks to the response, waiting when it lags."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None],
                 cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer = bytearray()

    def _put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self._cancelled.is_set():
                raise _Cancelled
            try:
                self._chunks.put(item, timeout=1)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def flush(self) -> None:
        return None

    def finish(self, error: BaseException | None) -> None:
        if self._buffer and error is None:
            self._put(bytes(self._buffer))
        self._put(error)


def stream_bundle(
    db: Database, *, keys: LogKeys, case_id: int, tier: Tier, now: datetime,
    consistent_with: Sequence[int] = (),
) -> Iterator[bytes]:
    """The bundle as a byte stream, written by a thread of its own."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
    cancelled = threading.Event()
    writer = _QueueWriter(chunks, cancelled)

    def run() -> None:
        try:
            export_bundle(db, keys=keys, case_id=case_id, tier=tier, now=now,
                          out=cast(IO[bytes], writer), consistent_with=consistent_with)
        except _Cancelled:
            return
        except BaseException as exc:  # handed to the response, which aborts the stream
            try:
                writer.finish(exc)
            except _Cancelled:
                pass
            return
        try:
            writer.finish(None)
        except _Cancelled:
            pass

    thread = threading.Thread(target=run, name=f"bundle-{case_id}", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        thread.join()
