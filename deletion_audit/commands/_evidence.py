"""Gathering evidence items for ``manifest build``: walking, kind sniffing and parallel
hashing of files.

Two ways to hash, chosen per workload. Large files are read in 1 MiB blocks by a thread
pool: ``os.readv`` and hashlib both release the GIL on blocks that size, so threads run the
cores at full speed with no copying between processes. Small files are dominated by the
interpreter's per-file work (open, read, close, bookkeeping) under the GIL, so they go to a
process pool in chunks of paths, one result list per chunk.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from deletion_audit.core import manifest as mf

# The one hasher, shared with the agent (core/hashing.py); re-exported for the build.
from deletion_audit.core.hashing import (  # noqa: F401 - re-exported
    BLOCK,
    IMAGE_BRANDS,
    SMALL_FILE_AVERAGE,
    Hashed,
    hash_file,
    process_pool,
    sniff_kind,
)

_SAMPLE: Final = 64


FileTask = tuple[str, str | None, str | None]
"""``(path, source, subject)``: a file to hash and what its entry says besides."""


def prepare_files(tasks: Sequence[FileTask]) -> list[mf.PreparedEntry]:
    """Hash files and prepare their manifest entries (line and leaf hash).

    Done in the workers, not the parent: after the content hash, an entry's leaf needs two
    more hashes, and the parent is the one process that cannot run in parallel.
    """
    prepare = mf.prepare_values
    out = []
    for path, source, subject in tasks:
        digest, size, kind = hash_file(path)
        out.append(prepare(digest, kind, size, subject, None, source))
    # Sorted runs make the writer's final sort a merge of runs (Timsort finds them).
    out.sort()
    return out


# -- walking -----------------------------------------------------------------------------


@dataclass
class Walk:
    """Regular files found under the roots, by absolute path, with what was left out."""

    files: list[str] = field(default_factory=list)
    root_of: list[int] = field(default_factory=list)
    """Index of the root argument each file was found under."""
    skipped: Counter[str] = field(default_factory=Counter)


class WalkError(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cannot read {path}: {why}")


def walk(roots: Sequence[str]) -> Walk:
    """Every regular file under ``roots`` (absolute paths), following no symlink: a link
    may point outside the evidence copy, or loop. Symlinks and special files are counted
    as skipped; an unreadable directory is an error, because the manifest must be whole."""
    found = Walk()
    for index, root in enumerate(roots):
        try:
            mode = os.lstat(root).st_mode
        except OSError as exc:
            raise WalkError(root, exc.strerror or str(exc)) from None
        if stat.S_ISLNK(mode):
            found.skipped["symlink"] += 1
        elif stat.S_ISREG(mode):
            found.files.append(root)
            found.root_of.append(index)
        elif stat.S_ISDIR(mode):
            before = len(found.files)
            _walk_dir(root, found)
            found.root_of.extend([index] * (len(found.files) - before))
        else:
            found.skipped["special file"] += 1
    return found


def _walk_dir(top: str, found: Walk) -> None:
    files = found.files
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    # DirEntry answers these from the directory listing (d_type) without
                    # a stat call on most file systems.
                    if entry.is_file(follow_symlinks=False):
                        files.append(entry.path)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_symlink():
                        found.skipped["symlink"] += 1
                    else:
                        found.skipped["special file"] += 1
        except OSError as exc:
            raise WalkError(directory, exc.strerror or str(exc)) from None


# -- hashing -------------------------------------------------------------------------------


def average_size(paths: Sequence[str]) -> float:
    """Mean size of an evenly spaced sample of ``paths``: enough to pick a strategy."""
    if not paths:
        return 0.0
    step = max(1, len(paths) // _SAMPLE)
    sizes = []
    for path in paths[::step]:
        try:
            sizes.append(os.lstat(path).st_size)
        except OSError:
            continue
    return sum(sizes) / len(sizes) if sizes else 0.0


def _chunks(tasks: Sequence[FileTask], size: int) -> list[Sequence[FileTask]]:
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def choose_strategy(paths: Sequence[str], jobs: int) -> str:
    """``threads`` or ``processes`` (or ``serial`` for one job or few files)."""
    if jobs <= 1 or len(paths) < 64:
        return "serial"
    return "processes" if average_size(paths) < SMALL_FILE_AVERAGE else "threads"


def hash_files(
    tasks: Sequence[FileTask],
    *,
    jobs: int,
    strategy: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[mf.PreparedEntry]:
    """Hash the files of ``tasks`` in parallel and prepare their entries: in the order of
    ``tasks`` chunk by chunk, each chunk sorted (the writer sorts them all anyway).

    ``progress`` is called with the number of files just finished. OSError names the file.
    """
    chosen = strategy or choose_strategy([task[0] for task in tasks], jobs)
    if chosen == "serial":
        for chunk in _chunks(tasks, 64):
            yield from prepare_files(chunk)
            if progress:
                progress(len(chunk))
        return
    if chosen == "threads":
        # One file per task keeps all threads busy to the end with files of mixed sizes.
        size = 1 if len(tasks) < 4096 else 16
        executor: Executor = ThreadPoolExecutor(max_workers=jobs)
    else:
        # Enough chunks to balance the load, few enough that task overhead stays small.
        size = max(16, min(512, len(tasks) // (jobs * 8) or 1))
        executor = process_pool(jobs, preload=__name__)
    try:
        for results in executor.map(prepare_files, _chunks(tasks, size)):
            yield from results
            if progress:
                progress(len(results))
    except BaseException:
        # A file that cannot be read ends the build: report it now, not after hashing
        # every chunk still queued.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
