"""The court bundle's manifest file checked against the examiner's statement, in a process
of its own when the file is large: it is the other half of the work with the verdict's
replay, and the two run side by side (each is a single-threaded pass over every item).

One pass over the file does everything the manifest needs: it is streamed from the zip
(never written out: 5 GB at 26 million items), hashed and checked line by line with its
tree root (the examiner's statement), and — when the case registered a manifest, so a
replay will want them — its entries are inserted into the items database the replay
attaches (:class:`~deletion_audit.verdicts.replay_store.ItemsLoaded`), instead of the
replay reading and parsing the file a second time.
"""

from __future__ import annotations

import multiprocessing
import zipfile
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deletion_audit.bundles.reading import ZIP_ERRORS, open_member
from deletion_audit.core import dsse
from deletion_audit.core import manifest as mf
from deletion_audit.core.errors import CoreError
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.verdicts.replay_store import load_read_items

# Below this size a second process costs more than it saves.
PARALLEL_FROM_BYTES = 8 << 20

@dataclass(frozen=True)
class Outcome:
    """What the pass found: plain values, returned from a worker process."""

    problem: str | None
    """None if the file checks out against the statement and the registration."""
    count: int
    unreadable: str | None = None
    """The zip member could not be read (a damaged bundle, not a wrong manifest)."""
    digest: tuple[str, int] | None = None
    """The member's SHA-256 and size, when it was read to its end."""
    loaded: Mapping[str, Any] | None = None
    """The items loaded for the replay (header, count, SHA-256), when asked for and the
    file is a manifest."""
    load_error: str | None = None
    """Why no items were loaded, when asked for."""


def _registration_problem(summary: mf.ManifestSummary,
                          registered: Mapping[str, Any] | None) -> str | None:
    if registered is not None and (registered.get("fileSha256"), registered.get("root")) != (
            summary.sha256, summary.root_hex):
        return "the manifest is not the one the case registered"
    return None


@dataclass(frozen=True)
class Pass:
    """One pass over a bundle's manifest member (arguments of :func:`run_pass`)."""

    bundle: str
    member: str
    envelope: bytes
    examiner_key: bytes
    registered: Mapping[str, Any] | None
    items: str | None = None
    """The items database to fill (made by ``create_items_database``), if any."""
    manifest_id: int | None = None
    in_worker: bool = False
    """Run in a worker process beside the replay's: the items' inserts then run in a
    process of their own too (replay_store ``load_read_items(beside=True)``)."""


def run_pass(job: Pass) -> Outcome:
    """Read the member once, straight from the zip: check it against the statement and the
    registration, and load the items. Module-level, plain values: it runs in a worker
    process (which opens the zip itself: a file offset shared across a fork is not safe to
    read from)."""
    try:
        with zipfile.ZipFile(job.bundle) as zf, open_member(zf, job.member) as member:
            try:
                with mf.read_manifest(member) as reader:
                    if job.items is not None and job.manifest_id is not None:
                        load_read_items(reader, items=Path(job.items),
                                        manifest_id=job.manifest_id, beside=job.in_worker)
                    else:
                        reader.read_all()
                    summary = reader.summary
            except CoreError as exc:
                return Outcome(problem=str(exc), count=0, load_error=str(exc))
            digest = (summary.sha256, zf.getinfo(job.member).file_size)
    except ZIP_ERRORS as exc:
        return Outcome(problem=None, count=0, unreadable=f"{job.member}: {exc}",
                       load_error=f"{job.member}: {exc}")
    loaded = ({"header": summary.header.to_json_dict(), "count": summary.count,
               "sha256": summary.sha256} if job.items is not None else None)
    try:
        mf.verify_summary(summary, dsse.Envelope.from_json(job.envelope),
                          [public_key_from_raw(job.examiner_key)])
    except CoreError as exc:
        return Outcome(problem=str(exc), count=0, digest=digest, loaded=loaded)
    return Outcome(problem=_registration_problem(summary, job.registered),
                   count=summary.count, digest=digest, loaded=loaded)


class ManifestPass:
    """:func:`run_pass`, inline for a small member, in a forked worker for a large one."""

    def __init__(self, job: Pass, size: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[Outcome] | None = None
        self._outcome: Outcome | None = None
        if size < PARALLEL_FROM_BYTES:
            self._outcome = run_pass(job)
            return
        # fork: the worker needs no re-import, and the verifier has no threads yet.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("fork"))
        self._future = self._pool.submit(run_pass, replace(job, in_worker=True))

    def outcome(self) -> Outcome:
        if self._outcome is not None:
            return self._outcome
        if self._future is None or self._pool is None:
            raise RuntimeError("a manifest pass is either done inline or running")
        try:
            self._outcome = self._future.result()
        finally:
            self._pool.shutdown()
        return self._outcome
