"""The one content hasher: SHA-256 of a file in 1 MiB blocks, never following a symlink,
with its manifest kind sniffed from the first bytes.

Shared by the examiner's ``manifest build`` and the agent's scans, so one benchmark of it
(benchmarks/manifest_build.py) speaks for both, and the two can never disagree on a digest.
Blocks of 1 MiB let ``os.readv`` and hashlib release the GIL, so a thread pool runs the
cores at full speed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Final

BLOCK: Final = 1 << 20
# A sniff needs the first 12 bytes (RIFF and ISO-BMFF put the type at offsets 8 and 4).
_SNIFF: Final = 16
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

# ISO-BMFF major brands of still images (HEIF/HEIC, AVIF); any other `ftyp` is a video.
IMAGE_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
)


# Four-byte signatures that decide a kind alone (PNG, GIF, TIFF both byte orders, PDF,
# Matroska/WebM).
_MAGIC4: Final = {
    b"\x89PNG": "image", b"GIF8": "image", b"II*\x00": "image", b"MM\x00*": "image",
    b"%PDF": "document", b"\x1a\x45\xdf\xa3": "video",
}


def sniff_kind(head: bytes) -> str:
    """The manifest kind of content starting with ``head``, from its magic bytes.

    JPEG, PNG, GIF, TIFF, WebP, HEIF/HEIC/AVIF are images; ISO-BMFF of any other brand
    (MP4, MOV, 3GP), AVI and Matroska are videos; PDF is a document; the rest is other.
    Most files decide on the first lookup: this runs once per file of millions.
    """
    first = head[:4]
    kind = _MAGIC4.get(first)
    if kind is not None:
        return kind
    if first[:3] == b"\xff\xd8\xff":
        return "image"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in IMAGE_BRANDS else "video"
    if first == b"RIFF":
        form = head[8:12]
        if form == b"AVI ":
            return "video"
        if form == b"WEBP":
            return "image"
    return "other"


Hashed = tuple[str, int, str]
"""``(digest, size, kind)`` of one file: a plain tuple, because results cross process
boundaries in bulk and plain tuples pickle several times faster than any class."""


_local = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    # One reusable block per thread (or process): a fresh 1 MiB bytes object per read
    # would cost an allocation and page faults every time.
    cached: tuple[bytearray, memoryview] | None = getattr(_local, "buffer", None)
    if cached is None:
        block = bytearray(BLOCK)
        cached = (block, memoryview(block))
        _local.buffer = cached
    return cached


def hash_file(path: str) -> Hashed:
    """SHA-256, size and kind of one file, never following a symlink.

    OSError carries ``path`` as its filename, whichever call failed.
    """
    block, view = _buffer()
    try:
        fd = os.open(path, _OPEN_FLAGS)
        try:
            n = os.readv(fd, [block])
            # Only what this read filled: the reused buffer holds the previous file.
            kind = sniff_kind(bytes(view[:min(n, _SNIFF)]))
            hasher = hashlib.sha256(view[:n])
            size = n
            while n:
                n = os.readv(fd, [block])
                hasher.update(view[:n])
                size += n
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    return hasher.hexdigest(), size, kind


# -- parallel hashing --------------------------------------------------------------------

# Below this average size, per-file interpreter work dominates and processes win; above
# it, hashing dominates and threads win (benchmarks/manifest_build.py measures both).
SMALL_FILE_AVERAGE: Final = 256 * 1024

HashedPath = tuple[str, int] | None
"""``(hex digest, size)`` of one file, or ``None`` when it could not be read."""


def hash_paths(paths: Sequence[str]) -> list[HashedPath]:
    """Hash a chunk of files in one worker: plain tuples, because results cross process
    boundaries in bulk."""
    out: list[HashedPath] = []
    for path in paths:
        try:
            digest, size, _ = hash_file(path)
        except OSError:
            out.append(None)
            continue
        out.append((digest, size))
    return out


def process_pool(jobs: int, *, preload: str = __name__) -> Executor:
    """A process pool for hashing many small files."""
    # Imported on use: a big-file workload never pays for multiprocessing's start-up.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork starts workers in milliseconds with every module already imported, and never
    # re-runs the parent's main script (spawn and forkserver do). It is safe only while no
    # other thread runs — progress bars are drawn without one for this reason — so a
    # parent with threads falls back to forkserver.
    method = "fork" if sys.platform == "linux" and threading.active_count() == 1 else None
    if method is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
            else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context)
