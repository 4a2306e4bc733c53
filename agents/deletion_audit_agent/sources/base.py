"""What every source yields, and the pieces they share: ordered parallel hashing and the
bytes-per-second throttle."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class Hashed:
    """One object seen and hashed. ``locator`` (a path, a row key, an object key and
    version) never leaves the host: statements carry digests and counts only."""

    locator: str
    digest: bytes
    size: int
    modified_at: float | None = None
    """When the object was last written (POSIX seconds: a file's mtime, an object's
    LastModified, a SQL scope's declared timestamp column), if the source knows."""


@dataclass(frozen=True)
class Skipped:
    """One object seen but not hashed, and why (a slug: ``unreadable``, ``null-content``)."""

    locator: str
    reason: str


Seen = Hashed | Skipped


@dataclass(frozen=True)
class Removal:
    locator: str
    ok: bool
    error: str | None = None


class Source(Protocol):
    """A place to scan: a directory tree, a SQL table, an object-store prefix."""

    method: str
    """How deletion removes an item (a DeletionPredicate ``method``)."""
    grade: str

    def scan(self) -> Iterator[Seen]:
        """Every object of the scope, in a deterministic order (the scan root's order)."""
        ...

    def delete(self, items: Sequence[tuple[str, bytes]]) -> Iterator[Removal]:
        """Remove each ``(locator, digest)`` whose content still has that digest."""
        ...

    def exists(self, locator: str) -> bool:
        """Whether anything is still at ``locator`` (after a crash mid-delete)."""
        ...

    def close(self) -> None:
        ...


class Throttle:
    """A token bucket over bytes read, shared by the hashing threads (config
    ``throttle_bytes_per_second``): a scan must not starve the host it audits."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def spend(self, nbytes: int) -> None:
        if not self.rate or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + nbytes / self.rate
            wait = start - now
        if wait > 0:
            time.sleep(wait)


T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, jobs: int,
                window: int = 256) -> Iterator[R]:
    """``map(fn, items)`` on ``jobs`` threads with at most ``window`` items in flight:
    results come back in input order (the scan root depends on it) while the walk streams,
    so memory stays bounded however many objects the scope holds."""
    if jobs <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
