"""Membership proofs against the examiner-signed manifest root.

Only levels >= 8 of a manifest's tree are stored; a node below that is recomputed from the
at most 256 item rows of its block, which every sibling of a path below level 8 shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from deletion_audit.core import merkle
from deletion_audit.core.manifest import ManifestEntry, entry_leaf
from deletion_audit.evidence.manifests import STORED_LEVEL
from deletion_audit.models.manifests import KIND_NAMES, Manifest, ManifestItem, ManifestNode

BLOCK = 1 << STORED_LEVEL
MAX_CONFIRM = 10_000


@dataclass(frozen=True)
class Hit:
    digest: bytes
    index: int
    leaf: bytes  # digest ‖ SHA-256(JCS(rest of the entry)): reveals no person or source
    proof: list[bytes]


def _entry(row: ManifestItem) -> ManifestEntry:
    return ManifestEntry(
        digest=row.digest.hex(), kind=KIND_NAMES[row.kind], size=row.size,
        subject=row.subject.hex() if row.subject else None,
        pdq=row.pdq.hex() if row.pdq else None, source=row.source,
    )


def leaf_data(row: ManifestItem) -> bytes:
    return entry_leaf(_entry(row))


def _block_hashes(session: Session, manifest_id: int, blocks: set[int]) -> dict[int, list[bytes]]:
    """Leaf hashes of whole 256-leaf blocks, a few blocks per query."""
    out: dict[int, list[bytes]] = {b: [] for b in blocks}
    ordered = sorted(blocks)
    for start in range(0, len(ordered), 64):
        part = ordered[start : start + 64]
        condition = or_(*(and_(ManifestItem.ordinal >= b * BLOCK,
                               ManifestItem.ordinal < (b + 1) * BLOCK) for b in part))
        rows = session.execute(
            select(ManifestItem)
            .where(ManifestItem.manifest_id == manifest_id, condition)
            .order_by(ManifestItem.ordinal)
        ).scalars().all()
        for row in rows:
            out[row.ordinal // BLOCK].append(merkle.leaf_hash(leaf_data(row)))
    return out


def node_reader(session: Session, manifest_id: int) -> merkle.NodeReader:
    """Any perfect-subtree node of the manifest tree, in as few queries as it can."""

    def read(ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        found: dict[merkle.NodeId, bytes] = {}
        low = [(lvl, i) for lvl, i in ids if lvl < STORED_LEVEL]
        high = [(lvl, i) for lvl, i in ids if lvl >= STORED_LEVEL]
        blocks = _block_hashes(session, manifest_id, {(i << lvl) // BLOCK for lvl, i in low})
        for lvl, i in low:
            first = i << lvl
            hashes = blocks[first // BLOCK]
            part = hashes[first % BLOCK : first % BLOCK + (1 << lvl)]
            if len(part) == 1 << lvl:
                found[(lvl, i)] = merkle.root_from_leaf_hashes(part)
        for start in range(0, len(high), 200):
            chunk = high[start : start + 200]
            condition = or_(*(and_(ManifestNode.level == lvl, ManifestNode.idx == i)
                              for lvl, i in chunk))
            for lvl, i, h in session.execute(
                select(ManifestNode.level, ManifestNode.idx, ManifestNode.hash).where(
                    ManifestNode.manifest_id == manifest_id, condition)
            ):
                found[(lvl, i)] = h
        return found

    return read


def confirm(session: Session, *, manifest: Manifest, digests: Iterable[bytes]) -> list[Hit]:
    """Each digest that is in the manifest, with its leaf and an inclusion proof.

    All proofs of one call are resolved with one batched read of blocks and nodes.
    """
    wanted = sorted(set(digests))
    rows: list[ManifestItem] = []
    for start in range(0, len(wanted), 500):
        rows.extend(session.execute(
            select(ManifestItem).where(
                ManifestItem.manifest_id == manifest.id,
                ManifestItem.digest.in_(wanted[start : start + 500]),
            )
        ).scalars().all())
    rows.sort(key=lambda r: r.ordinal)
    ranges = [merkle.inclusion_ranges(r.ordinal, manifest.count) for r in rows]
    ids = sorted({n for rs in ranges for a, b in rs for n in merkle.range_nodes(a, b)})
    nodes = node_reader(session, manifest.id)(ids) if ids else {}

    def cached(_ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        return nodes

    return [
        Hit(digest=row.digest, index=row.ordinal, leaf=leaf_data(row),
            proof=merkle.hashes_for_ranges(rs, cached))
        for row, rs in zip(rows, ranges, strict=True)
    ]
