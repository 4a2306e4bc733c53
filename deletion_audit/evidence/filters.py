"""The manifest filter built batch by batch during an import (core.bloom's format).

The import sees the digests a batch at a time; the header count (hence ``m``) is known
from the signed statement before the first entry, so the bit array is allocated once and
each batch is ORed in, vectorised. Memory: the bit array (≈ 61 MB at 26 million items) and
one batch.
"""

from __future__ import annotations

import numpy as np

from deletion_audit.core import bloom


class FilterBuilder:
    def __init__(self, n: int, root: bytes) -> None:
        self.header = bloom.BloomHeader.for_items(n, root)
        self.bits = np.zeros(self.header.m // 8, dtype=np.uint8)
        self.added = 0

    def add(self, digests: bytes) -> None:
        """OR in ``digests``: concatenated 32-byte digests."""
        if not digests:
            return
        array = np.frombuffer(digests, dtype=np.uint8).reshape(-1, bloom.DIGEST_SIZE)
        prefix = np.ascontiguousarray(array[:, :16]).view("<u8")
        m = np.uint64(self.header.m)
        pos = prefix[:, 0] % m
        step = (prefix[:, 1] | np.uint64(1)) % m
        one = np.uint8(1)
        for _ in range(bloom.K):
            np.bitwise_or.at(self.bits, pos >> np.uint64(3),
                             np.left_shift(one, (pos & np.uint64(7)).astype(np.uint8)))
            pos += step
            pos[pos >= m] -= m
        self.added += len(array)

    def to_bytes(self) -> bytes:
        if self.added != self.header.n:
            raise ValueError(f"filter built over {self.added} digests, header says "
                             f"{self.header.n}")
        return self.header.to_bytes() + self.bits.tobytes()
