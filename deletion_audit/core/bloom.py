"""The manifest filter: a standard Bloom filter over item digests, specified exactly so
that the server (vectorised, numpy) and the agent (pure Python, memory-mapped) agree bit
for bit (DESIGN.md, Contracts → the manifest filter).

- ``k = 13`` probes; ``m = ceil(n · k / ln 2)`` bits (IEEE-754 double arithmetic) rounded up
  to a multiple of 64, at least 64: about 18.8 bits per item, a false-positive rate near
  1.2e-4, so 26 million items fit in 64 MB.
- Probe ``i`` (0 ≤ i < k) of a 32-byte digest is ``(h1 + i·h2) mod m`` with
  ``h1 = int.from_bytes(digest[0:8], "little")`` and
  ``h2 = int.from_bytes(digest[8:16], "little") | 1`` (Kirsch–Mitzenmacher double hashing;
  the digests are already uniform, so no further hashing is needed).
- Bit ``p`` is bit ``p mod 8`` (least significant first) of byte ``p // 8``.
- File: ``b"DABLOOM1"``, then ``n``, ``m``, ``k`` as uint64 little-endian, then the 32-byte
  manifest root (the filter answers for that manifest only), then the ``m / 8`` bytes.

A hit only means "maybe": the agent confirms it with the server, which answers with the
manifest leaf and an inclusion proof to the examiner-signed root.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from deletion_audit.core.errors import FormatError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAGIC: Final = b"DABLOOM1"
K: Final = 13
DIGEST_SIZE: Final = 32
ROOT_SIZE: Final = 32
_HEADER = struct.Struct("<8sQQQ32s")
HEADER_SIZE: Final = _HEADER.size  # 64
# Digests processed per numpy step: bounds the build's working memory (~40 MB) whatever n.
_CHUNK: Final = 1 << 20

StrPath = str | os.PathLike[str]


def bits_for(n: int) -> int:
    """``m`` for ``n`` items: ``ceil(n·k/ln 2)`` rounded up to a multiple of 64, ≥ 64."""
    if n < 0:
        raise ValueError(f"item count must not be negative, got {n}")
    raw = math.ceil(n * K / math.log(2))
    return max(64, -(-raw // 64) * 64)


@dataclass(frozen=True, slots=True)
class BloomHeader:
    n: int
    m: int
    k: int
    root: bytes

    def __post_init__(self) -> None:
        if self.k != K:
            raise FormatError(f"filter has k = {self.k}; this format fixes k = {K}")
        if self.m != bits_for(self.n):
            raise FormatError(
                f"filter has m = {self.m} bits for n = {self.n}; the format says "
                f"{bits_for(self.n)}"
            )
        if len(self.root) != ROOT_SIZE:
            raise FormatError(f"filter root is {len(self.root)} bytes, not {ROOT_SIZE}")

    @classmethod
    def for_items(cls, n: int, root: bytes) -> BloomHeader:
        return cls(n=n, m=bits_for(n), k=K, root=root)

    @property
    def size_bytes(self) -> int:
        """The size of the whole file: header and bit array."""
        return HEADER_SIZE + self.m // 8

    def to_bytes(self) -> bytes:
        return _HEADER.pack(MAGIC, self.n, self.m, self.k, self.root)

    @classmethod
    def parse(cls, data: bytes | memoryview | mmap.mmap) -> BloomHeader:
        if len(data) < HEADER_SIZE:
            raise FormatError(f"filter is {len(data)} bytes, shorter than its header")
        magic, n, m, k, root = _HEADER.unpack(data[:HEADER_SIZE])
        if magic != MAGIC:
            raise FormatError(f"not a manifest filter (magic {magic!r}, expected {MAGIC!r})")
        header = cls(n=n, m=m, k=k, root=root)
        if len(data) != header.size_bytes:
            raise FormatError(
                f"filter is {len(data)} bytes; its header says {header.size_bytes}"
            )
        return header


def _check_digest(digest: bytes) -> None:
    if len(digest) != DIGEST_SIZE:
        raise FormatError(f"a digest is {DIGEST_SIZE} bytes, got {len(digest)}")


def positions(digest: bytes, m: int) -> list[int]:
    """The k bit positions of ``digest`` in a filter of ``m`` bits."""
    h1 = int.from_bytes(digest[0:8], "little")
    h2 = int.from_bytes(digest[8:16], "little") | 1
    return [(h1 + i * h2) % m for i in range(K)]


def build_reference(digests: Iterable[bytes], root: bytes) -> bytes:
    """The filter file for ``digests``, bit by bit in plain Python: the specification in
    executable form, the oracle of the tests, fine for small inputs."""
    items = list(digests)
    for digest in items:
        _check_digest(digest)
    header = BloomHeader.for_items(len(items), root)
    bits = bytearray(header.m // 8)
    for digest in items:
        for p in positions(digest, header.m):
            bits[p >> 3] |= 1 << (p & 7)
    return header.to_bytes() + bytes(bits)


def _prefixes(digests: Any) -> npt.NDArray[np.uint64]:
    """The first 16 bytes of every digest as an ``(n, 2)`` array of little-endian uint64:
    all the probes use. Accepts an ``(n, 32)`` uint8 array, ``n·32`` contiguous bytes, an
    iterable of 32-byte digests (held as 16 bytes each, never whole), or such an array of
    prefixes already made."""
    import numpy as np

    if isinstance(digests, np.ndarray) and digests.dtype == np.uint64:
        if digests.ndim != 2 or digests.shape[1] != 2:
            raise FormatError(f"digest prefixes must be (n, 2) uint64, got {digests.shape}")
        return digests
    if isinstance(digests, np.ndarray):
        array = digests
    elif isinstance(digests, bytes | bytearray | memoryview):
        if len(digests) % DIGEST_SIZE:
            raise FormatError(f"digest buffer of {len(digests)} bytes is not n·{DIGEST_SIZE}")
        array = np.frombuffer(digests, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
    else:
        buffer = bytearray()
        for digest in digests:
            _check_digest(digest)
            buffer += digest[:16]
        array = np.frombuffer(bytes(buffer), dtype=np.uint8).reshape(-1, 16)
    if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] not in (16, DIGEST_SIZE):
        raise FormatError(f"digest array must be (n, {DIGEST_SIZE}) uint8, got "
                          f"{array.shape} {array.dtype}")
    prefix = np.ascontiguousarray(array[:, :16])
    return prefix.view("<u8").astype(np.uint64, copy=False)


class BloomBuilder:
    """Builds a filter batch by batch, vectorised with numpy: for an import that sees the
    digests in batches and knows ``n`` (the signed count) before the first one.

    Memory is the bit array plus one batch. Probes are computed modulo ``m`` term by term —
    ``(h1 mod m) + i·(h2 mod m)`` — the same number as the spec's ``(h1 + i·h2) mod m``
    without overflowing 64 bits (m < 2**40 here).
    """

    def __init__(self, n: int, root: bytes) -> None:
        import numpy as np  # the server extra: the agent's plain install has no numpy

        self.header = BloomHeader.for_items(n, root)
        self._bits = np.zeros(self.header.m // 8, dtype=np.uint8)
        self.added = 0

    def add(self, digests: Any) -> None:
        """OR in a batch: an ``(n, 32)`` uint8 array, ``n·32`` contiguous bytes, or an
        iterable of 32-byte digests."""
        import numpy as np

        prefixes = _prefixes(digests)
        m = np.uint64(self.header.m)
        one = np.uint8(1)
        for start in range(0, len(prefixes), _CHUNK):
            chunk = prefixes[start:start + _CHUNK]
            pos = chunk[:, 0] % m
            step = (chunk[:, 1] | np.uint64(1)) % m
            for _ in range(K):
                np.bitwise_or.at(self._bits, pos >> np.uint64(3),
                                 np.left_shift(one, (pos & np.uint64(7)).astype(np.uint8)))
                pos += step
                pos[pos >= m] -= m
        self.added += len(prefixes)

    def chunks(self, size: int = 4 << 20) -> Iterator[bytes]:
        """The filter file in pieces of at most ``size`` bytes (the header in the first),
        for storing a 60 MB filter without holding a second copy of it."""
        self._check_complete()
        yield self.header.to_bytes()
        bits = self._bits
        for start in range(0, len(bits), size):
            yield bits[start:start + size].tobytes()

    def _check_complete(self) -> None:
        if self.added != self.header.n:
            raise ValueError(
                f"filter built over {self.added} digests, its header says {self.header.n}"
            )

    def to_bytes(self) -> bytes:
        if self.added != self.header.n:
            raise ValueError(
                f"filter built over {self.added} digests, its header says {self.header.n}"
            )
        return self.header.to_bytes() + self._bits.tobytes()


def build(digests: Any, root: bytes) -> bytes:
    """The filter file for ``digests``, vectorised with numpy (the server's import path);
    identical, byte for byte, to :func:`build_reference`."""
    prefixes = _prefixes(digests)
    builder = BloomBuilder(len(prefixes), root)
    builder.add(prefixes)
    return builder.to_bytes()


class BloomFilter:
    """A filter file, read-only: memory-mapped from a path, or held from bytes.

    Lookups are pure Python (13 byte reads), which is what the agent runs; it never
    loads the whole filter into its own memory.
    """

    def __init__(self, data: bytes | mmap.mmap, header: BloomHeader) -> None:
        self._data = data
        self.header = header

    @classmethod
    def from_bytes(cls, data: bytes) -> BloomFilter:
        return cls(bytes(data), BloomHeader.parse(data))

    @classmethod
    def open(cls, path: StrPath) -> BloomFilter:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < HEADER_SIZE:
                raise FormatError(f"{path}: filter is {size} bytes, shorter than its header")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header = BloomHeader.parse(mapped)
        except FormatError as exc:
            mapped.close()
            raise FormatError(f"{path}: {exc}") from None
        return cls(mapped, header)

    def __enter__(self) -> BloomFilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()

    @property
    def n(self) -> int:
        return self.header.n

    @property
    def root(self) -> bytes:
        return self.header.root

    def might_contain(self, digest: bytes) -> bool:
        """False: certainly not in the manifest. True: maybe (confirm with the server)."""
        _check_digest(digest)
        data = self._data
        m = self.header.m
        h1 = int.from_bytes(digest[0:8], "little")
        h2 = int.from_bytes(digest[8:16], "little") | 1
        for i in range(K):
            p = (h1 + i * h2) % m
            if not data[HEADER_SIZE + (p >> 3)] >> (p & 7) & 1:
                return False
        return True

    def __contains__(self, digest: object) -> bool:
        return (isinstance(digest, bytes) and len(digest) == DIGEST_SIZE
                and self.might_contain(digest))
