"""A directory tree: every regular file under the root, in sorted walk order, following
no symlink (a link may lead out of the scope or loop; it is counted as skipped)."""

from __future__ import annotations

import fnmatch
import itertools
import os
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

from deletion_audit.core.hashing import (
    SMALL_FILE_AVERAGE,
    HashedPath,
    hash_file,
    hash_paths,
    process_pool,
)
from deletion_audit_agent.config import DirectoryAccess
from deletion_audit_agent.sources.base import Hashed, Removal, Seen, Skipped, Throttle, ordered_map
from deletion_audit_agent.state import State

_WRITE_FLAGS = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CACHE_BATCH = 1000
_SAMPLE = 64
# Small files go to worker processes in chunks; a few chunks in flight keep both busy.
_CHUNK = 128
_WINDOW = 8

_Task = tuple[str, os.stat_result | None, bytes | None] | Skipped


class DirectorySource:
    method = "unlink"
    grade = "logical"

    def __init__(self, access: DirectoryAccess, *, jobs: int, throttle: Throttle,
                 cache: State | None = None, use_cache: bool = False,
                 overwrite: bool = False) -> None:
        self.access = access
        self.jobs = jobs
        self.throttle = throttle
        self.cache = cache
        # A challenged scan re-reads everything; the cache is refreshed either way.
        self.use_cache = use_cache
        self.overwrite = overwrite
        if overwrite:
            self.method, self.grade = "overwrite", "sanitised"

    def close(self) -> None:
        pass

    def _excluded(self, path: str) -> bool:
        rel = os.path.relpath(path, self.access.spec_root or self.access.root)
        return any(fnmatch.fnmatch(rel, pattern) for pattern in self.access.exclude)

    def _walk(self) -> Iterator[tuple[str, os.stat_result] | Skipped]:
        root = self.access.root
        try:
            mode = os.lstat(root).st_mode
        except OSError:
            yield Skipped(root, "unreadable-directory")
            return
        if not stat.S_ISDIR(mode):
            yield Skipped(root, "symlink" if stat.S_ISLNK(mode) else "special-file")
            return
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                yield Skipped(directory, "unreadable-directory")
                continue
            subdirs = []
            for entry in entries:
                if self.access.exclude and self._excluded(entry.path):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    try:
                        yield entry.path, entry.stat(follow_symlinks=False)
                    except OSError:
                        yield Skipped(entry.path, "unreadable")
                elif entry.is_symlink():
                    yield Skipped(entry.path, "symlink")
                else:
                    yield Skipped(entry.path, "special-file")
            stack.extend(reversed(subdirs))

    def _tasks(self) -> Iterator[_Task]:
        # Cache lookups happen here, in the consuming thread: the SQLite handle is not
        # shared with the hashing threads.
        for found in self._walk():
            if isinstance(found, Skipped):
                yield found
                continue
            path, st = found
            cached = (self.cache.cached_digest(st)
                      if self.cache is not None and self.use_cache else None)
            yield path, st, cached

    def _hash(self, task: _Task) -> Seen | tuple[Hashed, os.stat_result]:
        if isinstance(task, Skipped):
            return task
        path, st, cached = task
        if cached is not None and st is not None:
            return Hashed(path, cached, st.st_size, st.st_mtime)
        try:
            digest, size, _kind = hash_file(path)
        except OSError:
            return Skipped(path, "unreadable")
        self.throttle.spend(size)
        hashed = Hashed(path, bytes.fromhex(digest), size,
                        st.st_mtime if st is not None else None)
        return (hashed, st) if st is not None and size == st.st_size else hashed

    def _strategy(self) -> tuple[str, Iterator[_Task]]:
        """Threads for big files, processes for many small ones (per-file interpreter work
        under the GIL dominates there), chosen on the first files of the walk as
        ``manifest build`` chooses on its sample."""
        tasks = self._tasks()
        head = list(itertools.islice(tasks, _SAMPLE))
        sizes = [t[1].st_size for t in head
                 if not isinstance(t, Skipped) and t[1] is not None and t[2] is None]
        small = self.jobs > 1 and len(sizes) >= _SAMPLE // 2 and \
            sum(sizes) / len(sizes) < SMALL_FILE_AVERAGE
        return ("processes" if small else "threads"), itertools.chain(head, tasks)

    def _by_processes(self, tasks: Iterator[_Task]) -> Iterator[Seen | tuple[Hashed,
                                                                              os.stat_result]]:
        pool = process_pool(self.jobs)
        pending: deque[tuple[list[_Task], Future[list[HashedPath]]]] = deque()

        def settle(chunk: list[_Task], future: Future[list[HashedPath]]
                   ) -> Iterator[Seen | tuple[Hashed, os.stat_result]]:
            answers = iter(future.result())
            for task in chunk:
                if isinstance(task, Skipped):
                    yield task
                    continue
                path, st, cached = task
                if cached is not None and st is not None:
                    yield Hashed(path, cached, st.st_size, st.st_mtime)
                    continue
                answer = next(answers)
                if answer is None:
                    yield Skipped(path, "unreadable")
                    continue
                digest, size = answer
                self.throttle.spend(size)
                hashed = Hashed(path, bytes.fromhex(digest), size,
                        st.st_mtime if st is not None else None)
                yield (hashed, st) if st is not None and size == st.st_size else hashed

        try:
            while True:
                chunk = list(itertools.islice(tasks, _CHUNK))
                if not chunk:
                    break
                paths = [t[0] for t in chunk if not isinstance(t, Skipped) and t[2] is None]
                pending.append((chunk, pool.submit(hash_paths, paths)))
                if len(pending) >= _WINDOW:
                    yield from settle(*pending.popleft())
            while pending:
                yield from settle(*pending.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def scan(self) -> Iterator[Seen]:
        fresh: list[tuple[os.stat_result, bytes]] = []
        strategy, tasks = self._strategy()
        results = (self._by_processes(tasks) if strategy == "processes"
                   else ordered_map(self._hash, tasks, jobs=self.jobs))
        for result in results:
            if isinstance(result, tuple):
                hashed, st = result
                result = hashed
                # Without a cache nothing is kept: memory stays flat however many files.
                if self.cache is not None:
                    fresh.append((st, hashed.digest))
                    if len(fresh) >= _CACHE_BATCH:
                        self.cache.cache_digests(fresh)
                        fresh = []
            yield result
        if self.cache is not None and fresh:
            self.cache.cache_digests(fresh)

    def delete(self, items: Sequence[tuple[str, bytes]]) -> Iterator[Removal]:
        root = self.access.root
        for path, digest in items:
            if os.path.commonpath([root, path]) != root:
                yield Removal(path, False, "outside the scope")
                continue
            try:
                current, size, _ = hash_file(path)
                if bytes.fromhex(current) != digest:
                    yield Removal(path, False, "content changed since the scan")
                    continue
                if self.overwrite:
                    _overwrite(path, size)
                os.unlink(path)
            except OSError as exc:
                yield Removal(path, False, exc.strerror or str(exc))
                continue
            # The I/O budget covers deletion's reads (and overwrites) too.
            self.throttle.spend(size * (2 if self.overwrite else 1))
            yield Removal(path, True)

    def exists(self, locator: str) -> bool:
        return os.path.lexists(locator)


def _overwrite(path: str, size: int) -> None:
    """Zeros over the content before unlinking. On copy-on-write file systems and SSDs
    this is best effort; the grade says what was done, not what the medium guarantees."""
    fd = os.open(path, _WRITE_FLAGS)
    try:
        block = b"\0" * (1 << 20)
        left = size
        while left > 0:
            left -= os.write(fd, block[:min(left, len(block))])
        os.fsync(fd)
    finally:
        os.close(fd)
