"""The manifest filter: the exact format, the reference and numpy builders, lookups."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import bloom
from deletion_audit.core.errors import FormatError

ROOT = hashlib.sha256(b"manifest root").digest()
EIGHT = [hashlib.sha256(str(i).encode()).digest() for i in range(8)]
digests = st.binary(min_size=32, max_size=32)

# The filter of sha256(b"0") … sha256(b"7") with root sha256(b"manifest root"): n = 8,
# m = ceil(8 · 13 / ln 2) = 151 → 192 bits, a 64-byte header and 24 bytes of bits.
VECTOR_SHA256 = "97c5e9e6b0faba79feb83c2ba0f495004a86d243ed493908cb960e6276de19eb"
VECTOR_BITS = "8f44631a8c8feeab48e90834a0207b82246955dd81040913"


def spec_positions(digest: bytes, m: int) -> list[int]:
    """The probe positions restated from the specification, for the tests alone."""
    h1 = int.from_bytes(digest[0:8], "little")
    h2 = int.from_bytes(digest[8:16], "little") | 1
    return [(h1 + i * h2) % m for i in range(13)]


class TestFormat:
    def test_fixed_vector(self) -> None:
        data = bloom.build_reference(EIGHT, ROOT)
        assert len(data) == 88
        assert hashlib.sha256(data).hexdigest() == VECTOR_SHA256
        assert data[:8] == b"DABLOOM1"
        assert data[8:32] == (8).to_bytes(8, "little") + (192).to_bytes(8, "little") + (
            13).to_bytes(8, "little")
        assert data[32:64] == ROOT
        assert data[64:].hex() == VECTOR_BITS

    def test_numpy_builder_matches_the_vector(self) -> None:
        assert hashlib.sha256(bloom.build(EIGHT, ROOT)).hexdigest() == VECTOR_SHA256

    def test_bits_are_little_endian_within_bytes(self) -> None:
        data = bloom.build_reference(EIGHT[:1], ROOT)
        m = bloom.bits_for(1)
        bits = data[64:]
        expected = set(spec_positions(EIGHT[0], m))
        set_bits = {p for p in range(m) if bits[p // 8] >> (p % 8) & 1}
        assert set_bits == expected

    @pytest.mark.parametrize(
        ("n", "m"), [(0, 64), (1, 64), (3, 64), (4, 128), (8, 192), (1000, 18816)]
    )
    def test_bits_for(self, n: int, m: int) -> None:
        assert bloom.bits_for(n) == m
        assert m == max(64, math.ceil(math.ceil(n * 13 / math.log(2)) / 64) * 64)

    def test_26_million_items_fit_in_64_mb(self) -> None:
        header = bloom.BloomHeader.for_items(26_000_000, ROOT)
        assert header.size_bytes <= 64 * 1024 * 1024
        assert 18.7 < header.m / header.n < 18.8

    def test_positions_follow_the_spec(self) -> None:
        for digest in EIGHT:
            assert bloom.positions(digest, 18816) == spec_positions(digest, 18816)


class TestBuilders:
    @given(st.lists(digests, max_size=300))
    def test_numpy_equals_reference(self, items: list[bytes]) -> None:
        assert bloom.build(items, ROOT) == bloom.build_reference(items, ROOT)

    @given(st.lists(digests, min_size=1, max_size=300))
    def test_every_inserted_digest_is_found(self, items: list[bytes]) -> None:
        for data in (bloom.build(items, ROOT), bloom.build_reference(items, ROOT)):
            found = bloom.BloomFilter.from_bytes(data)
            assert all(found.might_contain(d) for d in items)
            assert found.n == len(items)

    def test_input_forms_agree(self) -> None:
        items = [os.urandom(32) for _ in range(500)]
        as_array = np.frombuffer(b"".join(items), dtype=np.uint8).reshape(-1, 32)
        expected = bloom.build_reference(items, ROOT)
        assert bloom.build(as_array, ROOT) == expected
        assert bloom.build(b"".join(items), ROOT) == expected
        assert bloom.build(iter(items), ROOT) == expected

    def test_batches_equal_one_build(self) -> None:
        items = [os.urandom(32) for _ in range(300)]
        builder = bloom.BloomBuilder(len(items), ROOT)
        builder.add(b"".join(items[:100]))
        builder.add(items[100:101])
        builder.add(np.frombuffer(b"".join(items[101:]), dtype=np.uint8).reshape(-1, 32))
        assert builder.to_bytes() == bloom.build_reference(items, ROOT)
        pieces = list(builder.chunks(size=100))
        assert b"".join(pieces) == builder.to_bytes()
        assert len(pieces[0]) == bloom.HEADER_SIZE
        assert max(len(p) for p in pieces) == 100

    def test_builder_refuses_a_count_mismatch(self) -> None:
        builder = bloom.BloomBuilder(3, ROOT)
        builder.add(EIGHT[:2])
        with pytest.raises(ValueError, match="built over 2 digests, its header says 3"):
            builder.to_bytes()
        with pytest.raises(ValueError, match="built over 2 digests"):
            next(builder.chunks())

    def test_chunked_build_equals_reference(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Chunk boundaries must not change a bit.
        monkeypatch.setattr(bloom, "_CHUNK", 7)
        items = [os.urandom(32) for _ in range(100)]
        assert bloom.build(items, ROOT) == bloom.build_reference(items, ROOT)

    def test_large_moduli_do_not_overflow(self) -> None:
        # h1 + i·h2 passes 2**64 for most digests; the numpy path works modulo m term by term.
        items = [b"\xff" * 32, b"\xfe" * 16 + b"\x00" * 16, os.urandom(32)]
        assert bloom.build(items, ROOT) == bloom.build_reference(items, ROOT)

    def test_bad_input(self) -> None:
        with pytest.raises(FormatError, match="a digest is 32 bytes, got 31"):
            bloom.build_reference([b"x" * 31], ROOT)
        with pytest.raises(FormatError, match="a digest is 32 bytes"):
            bloom.build([b"x" * 33], ROOT)
        with pytest.raises(FormatError, match="not n·32"):
            bloom.build(b"x" * 33, ROOT)
        with pytest.raises(FormatError, match="root is 31 bytes"):
            bloom.build_reference(EIGHT, ROOT[:31])

    def test_false_positive_rate_is_near_the_design(self) -> None:
        items = [os.urandom(32) for _ in range(20_000)]
        found = bloom.BloomFilter.from_bytes(bloom.build(items, ROOT))
        probes = 100_000
        false_hits = sum(found.might_contain(os.urandom(32)) for _ in range(probes))
        # Designed ~1.2e-4, i.e. ~12 expected: 60 would be five times the design.
        assert false_hits < 60


class TestReading:
    def test_open_memory_maps_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "filter.bin"
        path.write_bytes(bloom.build(EIGHT, ROOT))
        with bloom.BloomFilter.open(path) as found:
            assert found.root == ROOT
            assert found.header == bloom.BloomHeader(n=8, m=192, k=13, root=ROOT)
            assert all(d in found for d in EIGHT)
            assert b"not a digest" not in found

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: b"XXBLOOM1" + d[8:], "not a manifest filter"),
            (lambda d: d[:-1], "its header says 88"),
            (lambda d: d + b"\x00", "its header says 88"),
            (lambda d: d[:30], "shorter than its header"),
            (lambda d: d[:24] + (12).to_bytes(8, "little") + d[32:], "k = 12"),
            (lambda d: d[:16] + (256).to_bytes(8, "little") + d[24:], "m = 256 bits for n = 8"),
        ],
    )
    def test_malformed_files_are_refused(
        self, tmp_path: Path, mutate: Callable[[bytes], bytes], message: str
    ) -> None:
        data = mutate(bloom.build_reference(EIGHT, ROOT))
        with pytest.raises(FormatError, match=message):
            bloom.BloomFilter.from_bytes(data)
        path = tmp_path / "f"
        path.write_bytes(data)
        with pytest.raises(FormatError, match=message):
            bloom.BloomFilter.open(path)

    def test_lookup_needs_a_full_digest(self) -> None:
        found = bloom.BloomFilter.from_bytes(bloom.build_reference(EIGHT, ROOT))
        with pytest.raises(FormatError, match="32 bytes"):
            found.might_contain(b"short")

    def test_lookups_need_no_numpy(self, tmp_path: Path) -> None:
        # The agent's plain install has no numpy: reading and probing must not import it.
        path = tmp_path / "filter.bin"
        path.write_bytes(bloom.build_reference(EIGHT, ROOT))
        code = (
            "import sys, hashlib\n"
            "from deletion_audit.core import bloom\n"
            f"f = bloom.BloomFilter.open({str(path)!r})\n"
            "assert f.might_contain(hashlib.sha256(b'3').digest())\n"
            "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
