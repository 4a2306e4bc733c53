"""The court bundle's manifest file checked against the examiner's statement, in a process
of its own when the file is large: it is the other half of the work with the verdict's
replay, and the two run side by side (each is a single-threaded pass over every item)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from deletion_audit.core import dsse
from deletion_audit.core import manifest as mf
from deletion_audit.core.errors import CoreError
from deletion_audit.core.keys import public_key_from_raw

# Below this size a second process costs more than it saves.
PARALLEL_FROM_BYTES = 8 << 20

Result = tuple[str | None, int]
"""A problem (None if the file checks out) and the item count."""


def check_file(path: str, envelope: bytes, examiner_key: bytes,
               registered: Mapping[str, Any] | None) -> Result:
    """Everything :func:`manifest.verify_manifest` checks, then the case's registration.
    Module-level and returning plain values: it runs in a worker process."""
    try:
        checked = mf.verify_manifest(path, dsse.Envelope.from_json(envelope),
                                     [public_key_from_raw(examiner_key)])
    except CoreError as exc:
        return str(exc), 0
    summary = checked.summary
    if registered is not None and (registered.get("fileSha256"), registered.get("root")) != (
            summary.sha256, summary.root_hex):
        return "the manifest is not the one the case registered", summary.count
    return None, summary.count


class ManifestJob:
    def __init__(self, path: Path, envelope: bytes, examiner_key: bytes,
                 registered: Mapping[str, Any] | None) -> None:
        args = (str(path), envelope, examiner_key,
                dict(registered) if registered is not None else None)
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[Result] | None = None
        self._result: Result | None = None
        if path.stat().st_size < PARALLEL_FROM_BYTES:
            self._result = check_file(*args)
            return
        # fork: the worker needs no re-import, and the verifier has no threads yet.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("fork"))
        self._future = self._pool.submit(check_file, *args)

    def result(self) -> Result:
        if self._result is not None:
            return self._result
        if self._future is None or self._pool is None:
            raise RuntimeError("a manifest job is either done inline or running")
        try:
            self._result = self._future.result()
        finally:
            self._pool.shutdown()
        return self._result
