"""Reading a bundle zip: every member hashed as it is read, once, streamed."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

_CHUNK = 1 << 20
# What a damaged zip raises on reading: a bad header or CRC, a broken deflate stream, a
# truncated member, an unknown compression method.
ZIP_ERRORS = (zipfile.BadZipFile, OSError, zlib.error, EOFError, NotImplementedError,
              RuntimeError)


class BundleUnreadable(Exception):
    """The file is not a zip this verifier can read."""


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
            return self.zip.open(name)
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
            return self._members.zip.read(path)
        except ZIP_ERRORS as exc:
            raise BundleUnreadable(f"{path}: {exc}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

