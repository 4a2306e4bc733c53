"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs from stored nodes, verification.

A *node* is addressed as ``(level, index)``: the perfect subtree of ``2**level`` leaves that
covers leaves ``[index * 2**level, (index + 1) * 2**level)``. Only perfect subtrees are ever
stored; the hash of any other range (the ragged right edge of a tree) is folded from the
perfect subtrees it decomposes into, so a proof reads O(log n) stored hashes and never all
leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from deletion_audit.core.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""

NodeReader = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]
"""Fetches the hashes of stored perfect subtrees in one batch (one database round trip)."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1: ``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The root over leaf hashes, recursively as RFC 6962 defines it (reference, O(n))."""
    if not hashes:
        return EMPTY_ROOT
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    return frontier.root()


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees, left to right, whose concatenation is leaves ``[start, end)``.

    Valid for the ranges that occur as subtrees of an RFC 6962 tree: ``start`` is a multiple
    of a power of two at least ``end - start``, so the range splits greedily into decreasing
    powers of two.
    """
    if not 0 <= start < end:
        raise ValueError(f"bad range [{start}, {end})")
    nodes: list[NodeId] = []
    pos = start
    while pos < end:
        # The largest aligned perfect subtree starting at pos that fits in the range.
        level = (end - pos).bit_length() - 1
        while pos % (1 << level):
            level -= 1
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Fold the perfect-subtree hashes of a ragged range right to left (RFC 6962 MTH)."""
    if not hashes:
        raise ValueError("empty range")
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form the inclusion proof of ``index`` in a tree of
    ``size``, leaf sibling first (RFC 9162 §2.1.3.1, PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    # Walk from the root down, then reverse: the proof lists the deepest sibling first.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form the consistency proof between tree sizes ``first``
    and ``second`` (RFC 9162 §2.1.4.1, SUBPROOF), in proof order."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, second, first, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    out.reverse()
    return out


def hashes_for_ranges(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """Resolve each range to its hash, fetching every stored node needed in one batch."""
    per_range = [range_nodes(a, b) for a, b in ranges]
    wanted = sorted({node for nodes in per_range for node in nodes})
    got = read(wanted) if wanted else {}
    missing = [n for n in wanted if n not in got]
    if missing:
        raise LookupError(f"stored tree lacks nodes {missing[:4]}")
    return [fold_range([got[n] for n in nodes]) for nodes in per_range]


def tree_root(size: int, read: NodeReader) -> bytes:
    """Root of the first ``size`` leaves from stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    return hashes_for_ranges([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    return hashes_for_ranges(inclusion_ranges(index, size), read)


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    return hashes_for_ranges(consistency_ranges(first, second), read)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2: the root implied by an inclusion proof."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``leaf`` is at ``index`` in the tree with ``root``."""
    _check_hash(root, "root")
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root")


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise :class:`ProofError` unless the tree of size ``second`` with
    ``second_root`` extends the tree of size ``first`` with ``first_root``."""
    if first < 1 or first > second:
        # A proof from the empty tree proves nothing (current transparency-dev semantics).
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("roots of equal-size trees differ")
        return
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    for p in proof:
        _check_hash(p, "proof hash")
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        # first is a power of two: its root is the first node of the path.
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError(f"consistency proof does not lead to the root of size {first}")
    if sr != second_root:
        raise ProofError(f"consistency proof does not lead to the root of size {second}")


@dataclass
class Frontier:
    """The right edge of a growing tree: one hash per set bit of ``size``.

    Appending is O(log n) time and the state is O(log n) memory, so a streaming root (an
    agent hashing millions of files, the log's integrator) never holds the leaves.
    ``append`` reports every perfect subtree it completes, which is what a log stores.
    """

    size: int = 0
    # Perfect subtree hashes of decreasing level, left to right.
    stack: list[bytes] | None = None

    def __post_init__(self) -> None:
        if self.stack is None:
            self.stack = []

    @classmethod
    def restore(cls, size: int, read: NodeReader) -> Frontier:
        """Rebuild the edge of a stored tree of ``size`` leaves from its stored nodes."""
        if size == 0:
            return cls()
        nodes = range_nodes(0, size)
        got = read(nodes)
        return cls(size=size, stack=[got[n] for n in nodes])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the completed nodes ``(level, index, hash)``, leaf first."""
        stack = self.stack
        assert stack is not None  # noqa: S101 - set in __post_init__
        index = self.size
        completed = [(0, index, leaf)]
        h = leaf
        level = 0
        # Each trailing one bit of the old size is a left sibling that now has its pair.
        while (index >> level) & 1:
            h = node_hash(stack.pop(), h)
            level += 1
            completed.append((level, index >> level, h))
        stack.append(h)
        self.size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        out: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            out.extend(self.append(leaf))
        return out

    def root(self) -> bytes:
        stack = self.stack
        assert stack is not None  # noqa: S101 - set in __post_init__
        if not stack:
            return EMPTY_ROOT
        return fold_range(stack)


class MemoryTree:
    """A tree that keeps every perfect subtree in memory: the reference store for tests and
    for rebuilding a log in one pass."""

    def __init__(self) -> None:
        self.frontier = Frontier()
        self.nodes: dict[NodeId, bytes] = {}

    @property
    def size(self) -> int:
        return self.frontier.size

    def append(self, leaf: bytes) -> None:
        for level, index, h in self.frontier.append(leaf):
            self.nodes[(level, index)] = h

    def read(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self.size if size is None else size, self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.read)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(first, self.size if second is None else second, self.read)
