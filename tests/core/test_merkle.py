"""RFC 6962 Merkle tree: published vectors, a brute-force reference, and property tests."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import merkle
from deletion_audit.core.errors import ProofError

VECTORS = Path(__file__).parent.parent / "vectors" / "rfc6962"

# The standard leaves of transparency-dev/merkle and RFC 6962's test suite.
STANDARD_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _vector_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1, recursive, over leaf data."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 6962 §2.1.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def reference_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 6962 §2.1.2."""
    n = len(leaves)
    if m == n:
        return [] if complete else [reference_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], complete), reference_root(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_root(leaves[:k])]


def tree_of(leaves: list[bytes]) -> merkle.MemoryTree:
    tree = merkle.MemoryTree()
    for leaf in leaves:
        tree.append(merkle.leaf_hash(leaf))
    return tree


LEAVES_64 = [i.to_bytes(2, "big") * (i % 5) for i in range(64)]


class TestPublishedVectors:
    def test_known_roots(self) -> None:
        tree = tree_of(STANDARD_LEAVES)
        assert tree.root(1).hex().startswith("6e340b9c")
        assert tree.root(1).hex().endswith("a01d")
        assert tree.root(8).hex() == (
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        )

    @pytest.mark.parametrize("path", _vector_files("inclusion"), ids=_vector_id)
    def test_inclusion(self, path: Path) -> None:
        v = _load(path)
        proof = [_b64(h) for h in v["proof"] or []]
        args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
        if v["wantErr"]:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(*args)
        else:
            merkle.verify_inclusion(*args)

    @pytest.mark.parametrize("path", _vector_files("consistency"), ids=_vector_id)
    def test_consistency(self, path: Path) -> None:
        v = _load(path)
        proof = [_b64(h) for h in v["proof"] or []]
        args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
        if v["wantErr"]:
            with pytest.raises(ProofError):
                merkle.verify_consistency(*args)
        else:
            merkle.verify_consistency(*args)

    def test_vectors_are_present(self) -> None:
        # Guards against a packaging slip that would make the parametrised tests vanish.
        assert len(_vector_files("inclusion")) > 50
        assert len(_vector_files("consistency")) > 50

    def test_our_proofs_match_the_happy_path_vectors(self) -> None:
        tree = tree_of(STANDARD_LEAVES)
        for path in _vector_files("inclusion"):
            v = _load(path)
            if v["desc"] == "happy path" and v["treeSize"] <= 8:
                got = tree.inclusion_proof(v["leafIdx"], v["treeSize"])
                assert got == [_b64(h) for h in v["proof"] or []], path


class TestAgainstBruteForce:
    def test_every_size_and_index_up_to_64(self) -> None:
        tree = tree_of(LEAVES_64)
        for n in range(1, 65):
            leaves = LEAVES_64[:n]
            root = reference_root(leaves)
            assert tree.root(n) == root
            for m in range(n):
                proof = tree.inclusion_proof(m, n)
                assert proof == reference_path(m, leaves)
                merkle.verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, proof, root)
            for m in range(1, n + 1):
                cproof = tree.consistency_proof(m, n)
                assert cproof == reference_subproof(m, leaves, True)
                merkle.verify_consistency(m, n, cproof, reference_root(leaves[:m]), root)

    def test_empty_tree_root(self) -> None:
        assert merkle.MemoryTree().root() == hashlib.sha256(b"").digest()
        assert merkle.root_from_leaf_hashes([]) == merkle.EMPTY_ROOT


class TestFrontier:
    @given(st.lists(st.binary(max_size=8), max_size=70))
    def test_streaming_root_matches_reference(self, leaves: list[bytes]) -> None:
        frontier = merkle.Frontier()
        for leaf in leaves:
            frontier.append(merkle.leaf_hash(leaf))
        assert frontier.root() == reference_root(leaves)
        # Memory is one hash per set bit of the size.
        assert len(frontier.stack or []) == bin(len(leaves)).count("1")

    @given(st.integers(min_value=0, max_value=64), st.integers(min_value=0, max_value=10))
    def test_restore_continues_where_it_stopped(self, first: int, more: int) -> None:
        tree = tree_of(LEAVES_64[:first])
        restored = merkle.Frontier.restore(first, tree.read)
        extra = [bytes([i]) for i in range(more)]
        for leaf in extra:
            restored.append(merkle.leaf_hash(leaf))
        assert restored.root() == reference_root(LEAVES_64[:first] + extra)


class TestProofProperties:
    @given(
        st.integers(min_value=1, max_value=64).flatmap(
            lambda n: st.tuples(st.just(n), st.integers(0, n - 1))
        ),
        st.integers(min_value=0, max_value=255),
        st.integers(min_value=0, max_value=7),
    )
    def test_any_flipped_bit_breaks_inclusion(
        self, case: tuple[int, int], byte_pick: int, bit: int
    ) -> None:
        n, m = case
        tree = tree_of(LEAVES_64)
        proof = tree.inclusion_proof(m, n)
        root = tree.root(n)
        leaf = merkle.leaf_hash(LEAVES_64[m])
        if not proof:
            bad_leaf = bytearray(leaf)
            bad_leaf[byte_pick % 32] ^= 1 << bit
            with pytest.raises(ProofError):
                merkle.verify_inclusion(bytes(bad_leaf), m, n, proof, root)
            return
        which = byte_pick % len(proof)
        tampered = bytearray(proof[which])
        tampered[byte_pick % 32] ^= 1 << bit
        bad = [*proof[:which], bytes(tampered), *proof[which + 1:]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, m, n, bad, root)

    @given(
        st.integers(min_value=2, max_value=64).flatmap(
            lambda n: st.tuples(st.integers(1, n - 1), st.just(n))
        )
    )
    def test_consistency_fails_for_a_rewritten_history(self, sizes: tuple[int, int]) -> None:
        m, n = sizes
        tree = tree_of(LEAVES_64)
        forged = LEAVES_64[:n]
        forged = [*forged[: m - 1], b"rewritten", *forged[m:]]
        forged_root = reference_root(forged)
        proof = tree.consistency_proof(m, n)
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n, proof, tree.root(m), forged_root)

    def test_out_of_range_requests_are_value_errors(self) -> None:
        with pytest.raises(ValueError, match="outside"):
            merkle.inclusion_ranges(5, 5)
        with pytest.raises(ValueError, match="no consistency proof"):
            merkle.consistency_ranges(0, 5)
        with pytest.raises(ValueError, match="no consistency proof"):
            merkle.consistency_ranges(6, 5)

    def test_missing_stored_node_is_reported(self) -> None:
        tree = tree_of(LEAVES_64[:8])
        del tree.nodes[(3, 0)]
        with pytest.raises(LookupError, match="lacks nodes"):
            tree.root(8)
