"""Reading a bundle zip: every member hashed as it is read, once, streamed."""

from __future__ import annotations

import hashlib
import importlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import IO


def _isal_zlib() -> ModuleType | None:
    """ISA-L's inflate, when installed (an optional speed-up: zlib reads the same)."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ModuleNotFoundError:  # pragma: no cover - depends on the installation
        return None


_ISAL_ZLIB = _isal_zlib()
# What a damaged zip raises on reading: a bad header or CRC, a broken deflate stream (zlib's
# error or ISA-L's), a truncated member, an unknown compression method.
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, OSError, zlib.error, EOFError, NotImplementedError, RuntimeError,
    *((_ISAL_ZLIB.error,) if _ISAL_ZLIB is not None else ()))

_CHUNK = 1 << 20


class BundleUnreadable(Exception):
    """The file is not a zip this verifier can read."""


def open_member(zf: zipfile.ZipFile, name: str) -> IO[bytes]:
    """The member ``name`` of ``zf``, opened for streaming.

    A deflated member is inflated by ISA-L when it is installed (a 1,000,000-item court
    manifest: 1.0 → 0.45 CPU s): its decompressor is a drop-in for the zlib one zipfile
    makes (``decompress(data, max_length)``, ``eof``, ``unconsumed_tail``, ``flush``), and
    zipfile still checks the member's size and CRC-32 as it reads.
    """
    member = zf.open(name)
    if _ISAL_ZLIB is not None and getattr(member, "_compress_type", None) == \
            zipfile.ZIP_DEFLATED and hasattr(member, "_decompressor"):
        member._decompressor = _ISAL_ZLIB.decompressobj(-15)
    return member


class Members:
    """The members of a bundle, each hashed on first read (SHA-256 and size)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except ZIP_ERRORS as exc:
            raise BundleUnreadable(f"{path} is not a readable zip: {exc}") from None
        names = [info.filename for info in self.zip.infolist()]
        self.names = set(names)
        self.duplicates = sorted({n for n in names if names.count(n) > 1}) if len(
            self.names) != len(names) else []
        self.digests: dict[str, tuple[str, int]] = {}

    def close(self) -> None:
        self.zip.close()

    def has(self, name: str) -> bool:
        return name in self.names

    def size(self, name: str) -> int:
        """The member's uncompressed size, as its zip entry states it."""
        return self.zip.getinfo(name).file_size

    def _open(self, name: str) -> IO[bytes]:
        try:
            return open_member(self.zip, name)
        except ZIP_ERRORS as exc:
            raise BundleUnreadable(f"{name}: {exc}") from None

    def read(self, name: str) -> bytes:
        with self._open(name) as fh:
            try:
                data = fh.read()
            except ZIP_ERRORS as exc:
                raise BundleUnreadable(f"{name}: {exc}") from None
        self.digests[name] = (hashlib.sha256(data).hexdigest(), len(data))
        return data

    def lines(self, name: str) -> Iterator[bytes]:
        """The member's lines (with their newline), hashed on the way."""
        h, size = hashlib.sha256(), 0
        with self._open(name) as fh:
            try:
                for line in fh:
                    h.update(line)
                    size += len(line)
                    yield line
            except ZIP_ERRORS as exc:
                raise BundleUnreadable(f"{name}: {exc}") from None
        self.digests[name] = (h.hexdigest(), size)

    def extract(self, name: str, dest: Path) -> None:
        h, size = hashlib.sha256(), 0
        with self._open(name) as fh, dest.open("wb") as out:
            try:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            except ZIP_ERRORS as exc:
                raise BundleUnreadable(f"{name}: {exc}") from None
        self.digests[name] = (h.hexdigest(), size)

    def digest(self, name: str) -> tuple[str, int]:
        if name not in self.digests:
            h, size = hashlib.sha256(), 0
            with self._open(name) as fh:
                try:
                    while chunk := fh.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                except ZIP_ERRORS as exc:
                    raise BundleUnreadable(f"{name}: {exc}") from None
            self.digests[name] = (h.hexdigest(), size)
        return self.digests[name]


class LazyEnvelopes(Mapping[str, bytes]):
    """Envelopes by SHA-256, read from the zip when asked: a 26-million-item case carries
    gigabytes of them, more than the verifier may hold at once."""

    def __init__(self, members: Members, paths: Mapping[str, str]) -> None:
        self._members = members
        self._paths = dict(paths)

    def __getitem__(self, key: str) -> bytes:
        path = self._paths[key]
        try:
            with open_member(self._members.zip, path) as fh:
                return fh.read()
        except ZIP_ERRORS as exc:
            raise BundleUnreadable(f"{path}: {exc}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

