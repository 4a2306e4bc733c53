"""The log's domain: append an event with its leaf, integrate leaves, prove, verify.

Every later domain records its events through :func:`append_event`, inside its own
transaction, so an event is either stored and logged or neither. Integration (sequencing
leaves, storing subtree hashes, signing a checkpoint) is serialised by a lock on the
``log_state`` row (PostgreSQL) or the database write lock (SQLite, ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit import deferred
from deletion_audit.core import merkle
from deletion_audit.core.checkpoint import Checkpoint, sign_checkpoint
from deletion_audit.core.leaves import encode_leaf
from deletion_audit.core.note import NoteSigner
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.models import Event, LogCheckpoint, LogLeaf, LogNode, LogState

# Node rows per INSERT statement batch; keeps parameter lists well under engine limits.
_NODE_CHUNK = 5_000


@dataclass(frozen=True)
class AppendedEvent:
    event_id: int
    leaf_hash: bytes


@dataclass(frozen=True)
class Integration:
    integrated: int
    size: int
    root: bytes
    checkpoint: str | None


def append_event(
    session: Session, *, event_type: str, event: Mapping[str, Any], now: datetime
) -> AppendedEvent:
    """Store an event and its leaf in the caller's transaction (prebuilt Core inserts:
    this is on every write's path, ingest's included)."""
    encoded = encode_leaf(event_type, event)
    leaf_hash = merkle.leaf_hash(encoded.data)
    leaf = {"leaf_hash": leaf_hash, "data": encoded.data, "created_at": now}
    if encoded.salt is None:
        # Only a public event can repeat byte for byte (restricted ones are salted).
        try:
            with session.begin_nested():
                session.execute(_INSERT_LEAF, leaf)
        except IntegrityError:
            raise Conflict(f"this {event_type} event is already in the log") from None
    else:
        session.execute(_INSERT_LEAF, leaf)
    event_id = session.execute(_INSERT_EVENT, {
        "type": event_type, "body": dict(event), "salt": encoded.salt, "leaf_hash": leaf_hash,
        "created_at": now}).scalar_one()
    return AppendedEvent(event_id=event_id, leaf_hash=leaf_hash)


def append_events(
    session: Session, *, event_type: str, events: Sequence[tuple[Mapping[str, Any], datetime]]
) -> list[bytes]:
    """Store several events of one type, each with its time, and their leaves in the
    caller's transaction, in this order, in two statements (one for the leaves, one for
    the events); their leaf hashes. A public type's events (which can repeat byte for
    byte: :func:`append_event` refuses a repeat) are appended one by one."""
    encoded = [encode_leaf(event_type, event) for event, _ in events]
    if any(enc.salt is None for enc in encoded):
        return [append_event(session, event_type=event_type, event=event, now=at).leaf_hash
                for event, at in events]
    hashes = [merkle.leaf_hash(enc.data) for enc in encoded]
    if not hashes:
        return hashes
    waiting = deferred.gathered(session)
    if waiting is not None:
        waiting.add(_LEAVES, _LEAF_COLUMNS, [
            (h, enc.data, at) for h, enc, (_, at) in zip(hashes, encoded, events, strict=True)])
        waiting.add(_EVENTS, _EVENT_COLUMNS, [
            (event_type, dict(event), enc.salt, h, at)
            for (event, at), enc, h in zip(events, encoded, hashes, strict=True)])
        return hashes
    conn = session.connection()
    conn.execute(_INSERT_LEAVES, [
        {"leaf_hash": h, "data": enc.data, "created_at": at}
        for h, enc, (_, at) in zip(hashes, encoded, events, strict=True)]).all()
    conn.execute(_INSERT_EVENT, [
        {"type": event_type, "body": dict(event), "salt": enc.salt, "leaf_hash": h,
         "created_at": at}
        for (event, at), enc, h in zip(events, encoded, hashes, strict=True)]).all()
    return hashes


# Built once: constructing a statement costs more than executing it on this path.
_EVENTS = cast(Table, Event.__table__)
_INSERT_LEAF = insert(cast(Table, LogLeaf.__table__))
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
# Several rows: RETURNING makes SQLAlchemy send them as one multi-row INSERT (its
# "insertmanyvalues"); without it psycopg's executemany runs one INSERT a row in the
# PostgreSQL server.
_LEAVES = cast(Table, LogLeaf.__table__)
_INSERT_LEAVES = insert(_LEAVES).returning(_LEAVES.c.id)
_LEAF_COLUMNS = ("leaf_hash", "data", "created_at")
_EVENT_COLUMNS = ("type", "body", "salt", "leaf_hash", "created_at")


def append_leaves(session: Session, leaves: Sequence[bytes], *, now: datetime) -> None:
    """Bulk-append raw leaf bytes (imports and benchmarks); one statement per chunk."""
    for start in range(0, len(leaves), _NODE_CHUNK):
        chunk = leaves[start : start + _NODE_CHUNK]
        session.execute(
            insert(LogLeaf),
            [{"leaf_hash": merkle.leaf_hash(d), "data": d, "created_at": now} for d in chunk],
        )


def node_reader(session: Session) -> merkle.NodeReader:
    """Read stored subtree hashes by ``(level, idx)``, in few round trips.

    SQLite plans a row-value ``IN`` list as a full scan, but an ``OR`` of equalities as one
    primary-key search per term (MULTI-INDEX OR); PostgreSQL handles the row-value list well.
    """
    sqlite = session.get_bind().dialect.name == "sqlite"
    chunk_size = 200 if sqlite else 500  # a flat OR chain stays far below SQLite's depth limit

    def read(ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        found: dict[merkle.NodeId, bytes] = {}
        for start in range(0, len(ids), chunk_size):
            chunk = list(ids[start : start + chunk_size])
            if sqlite:
                condition = or_(*(and_(LogNode.level == lvl, LogNode.idx == i)
                                  for lvl, i in chunk))
            else:
                condition = tuple_(LogNode.level, LogNode.idx).in_(chunk)
            rows = session.execute(
                select(LogNode.level, LogNode.idx, LogNode.hash).where(condition)
            )
            for level, idx, h in rows:
                found[(level, idx)] = h
        return found

    return read


def _lock_state(session: Session) -> LogState:
    state = session.execute(
        select(LogState).where(LogState.id == 1).with_for_update()
    ).scalar_one_or_none()
    if state is None:
        state = LogState(id=1, size=0, root=merkle.EMPTY_ROOT)
        session.add(state)
        session.flush()
    return state


def integrate(
    session: Session, *, signer: NoteSigner, origin: str, now: datetime, batch: int = 50_000
) -> Integration:
    """Sequence up to ``batch`` pending leaves, store their subtree hashes, sign a checkpoint.

    Call inside a write transaction; a second integrator waits on the lock, then finds
    nothing left to do.
    """
    state = _lock_state(session)
    pending = session.execute(
        select(LogLeaf.id, LogLeaf.leaf_hash)
        .where(LogLeaf.idx.is_(None))
        .order_by(LogLeaf.id)
        .limit(batch)
    ).all()
    if not pending:
        return Integration(integrated=0, size=state.size, root=state.root, checkpoint=None)
    frontier = merkle.Frontier.restore(state.size, node_reader(session))
    first = state.size
    nodes: list[dict[str, Any]] = []
    for _, leaf_hash in pending:
        nodes.extend(
            {"level": level, "idx": idx, "hash": h}
            for level, idx, h in frontier.append(leaf_hash)
        )
    session.execute(
        update(LogLeaf),
        [{"id": leaf_id, "idx": first + i} for i, (leaf_id, _) in enumerate(pending)],
    )
    for start in range(0, len(nodes), _NODE_CHUNK):
        session.execute(insert(LogNode), nodes[start : start + _NODE_CHUNK])
    root = frontier.root()
    state.size, state.root = frontier.size, root
    note = sign_checkpoint(Checkpoint(origin=origin, size=frontier.size, root_hash=root), signer)
    session.add(LogCheckpoint(size=frontier.size, root=root, note=note, signed_at=now))
    session.flush()
    return Integration(integrated=len(pending), size=frontier.size, root=root, checkpoint=note)


def current_size(session: Session) -> int:
    size = session.execute(select(LogState.size).where(LogState.id == 1)).scalar_one_or_none()
    return size or 0


def latest_checkpoint(session: Session) -> LogCheckpoint | None:
    return session.execute(
        select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
    ).scalar_one_or_none()


def checkpoint_at(session: Session, size: int) -> LogCheckpoint | None:
    return session.get(LogCheckpoint, size)


def _require_size(session: Session, size: int, what: str) -> None:
    have = current_size(session)
    if size > have:
        raise BadRequest(f"{what} {size} is beyond the log's size {have}", size=have)


def inclusion_proof(session: Session, *, index: int, size: int) -> list[bytes]:
    if size < 1:
        raise BadRequest("size must be at least 1")
    if not 0 <= index < size:
        raise BadRequest(f"index {index} is outside a tree of size {size}")
    _require_size(session, size, "size")
    return merkle.inclusion_proof(index, size, node_reader(session))


def consistency_proof(session: Session, *, first: int, second: int) -> list[bytes]:
    if not 1 <= first <= second:
        raise BadRequest(
            f"no consistency proof from size {first} to size {second}: "
            "need 1 <= first <= second"
        )
    _require_size(session, second, "second")
    return merkle.consistency_proof(first, second, node_reader(session))


def entry(session: Session, index: int) -> LogLeaf:
    if index < 0:
        raise BadRequest("index must not be negative")
    leaf = session.execute(select(LogLeaf).where(LogLeaf.idx == index)).scalar_one_or_none()
    if leaf is None:
        raise NotFound(f"no integrated leaf at index {index}", size=current_size(session))
    return leaf


def leaf_by_hash(session: Session, leaf_hash: bytes) -> LogLeaf:
    leaf = session.execute(
        select(LogLeaf).where(LogLeaf.leaf_hash == leaf_hash)
    ).scalar_one_or_none()
    if leaf is None:
        raise NotFound("no leaf with that hash")
    return leaf


def tile_hashes(session: Session, *, level: int, index: int, width: int) -> list[bytes]:
    """C2SP tile (level, index): the hashes of Merkle level 8·level, in order."""
    start = index * 256
    rows = session.execute(
        select(LogNode.hash)
        .where(LogNode.level == 8 * level, LogNode.idx >= start, LogNode.idx < start + width)
        .order_by(LogNode.idx)
    ).scalars().all()
    return list(rows)


def tile_entries(session: Session, *, index: int, width: int) -> list[bytes]:
    start = index * 256
    rows = session.execute(
        select(LogLeaf.data)
        .where(LogLeaf.idx >= start, LogLeaf.idx < start + width)
        .order_by(LogLeaf.idx)
    ).scalars().all()
    return list(rows)


def iter_integrated(session: Session, chunk: int = 10_000) -> Iterator[tuple[int, bytes, bytes]]:
    """Every integrated leaf as ``(idx, leaf_hash, data)`` in index order, keyset-paged."""
    after = -1
    while True:
        rows = session.execute(
            select(LogLeaf.idx, LogLeaf.leaf_hash, LogLeaf.data)
            .where(LogLeaf.idx > after)
            .order_by(LogLeaf.idx)
            .limit(chunk)
        ).all()
        if not rows:
            return
        for idx, leaf_hash, data in rows:
            assert idx is not None  # noqa: S101 - filtered by the query
            yield idx, leaf_hash, data
            after = idx
