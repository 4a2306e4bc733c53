"""Inserts gathered in a block (deletion_audit/deferred.py): on PostgreSQL they go out as
one statement when the block ends and store exactly what ordinary inserts store; a
constraint still holds; nothing is sent if the block raises. On SQLite, nothing is
gathered."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from deletion_audit import deferred
from deletion_audit.db import Database
from deletion_audit.models import Event, LogLeaf

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
LEAVES = cast(Table, LogLeaf.__table__)
EVENTS = cast(Table, Event.__table__)
ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
LEAF_COLUMNS = ("leaf_hash", "data", "created_at")
EVENT_COLUMNS = ("type", "body", "salt", "leaf_hash", "created_at")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _rows(n: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    leaves, events = [], []
    for i in range(n):
        h = secrets.token_bytes(32)
        at = NOW + timedelta(seconds=i)
        leaves.append((h, b"leaf %d" % i, at))
        # JSON with text beyond ASCII, a null salt and a set one.
        events.append(("attestation", {"n": i, "who": "检察院", "none": None},
                       bytes([i]) * 16 if i % 2 else None, h, at))
    return leaves, events


def _stored(db: Database, hashes: list[bytes]) -> list[tuple[Any, ...]]:
    with db.read() as s:
        rows = s.execute(
            select(LogLeaf.leaf_hash, LogLeaf.data, LogLeaf.created_at, Event.type, Event.body,
                   Event.salt).join(Event, Event.leaf_hash == LogLeaf.leaf_hash)
            .where(LogLeaf.leaf_hash.in_(hashes)).order_by(LogLeaf.created_at)).all()
    return [tuple(r) for r in rows]


class TestGathering:
    def test_gathered_rows_are_stored_as_ordinary_inserts_store_them(self, db: Database) -> None:
        gathered_leaves, gathered_events = _rows(3)
        plain_leaves, plain_events = _rows(3)
        sent: list[str] = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda *args: sent.append(args[2].split(" ", 1)[0]))
        with db.write() as s, deferred.gathering(s):
            waiting = deferred.gathered(s)
            if db.dialect == "postgresql":
                assert waiting is not None
                waiting.add(LEAVES, LEAF_COLUMNS, gathered_leaves)
                # An event's leaf: a foreign key between two gathered tables.
                waiting.add(EVENTS, EVENT_COLUMNS, gathered_events)
                assert sent == []  # nothing sent before the block ends
            else:
                assert waiting is None
                s.execute(insert(LogLeaf), [dict(zip(LEAF_COLUMNS, r, strict=True))
                                            for r in gathered_leaves])
                s.execute(insert(Event), [dict(zip(EVENT_COLUMNS, r, strict=True))
                                          for r in gathered_events])
        if db.dialect == "postgresql":
            assert sent == ["WITH"]  # one statement for both tables
        with db.write() as s:
            s.execute(insert(LogLeaf), [dict(zip(LEAF_COLUMNS, r, strict=True))
                                        for r in plain_leaves])
            s.execute(insert(Event), [dict(zip(EVENT_COLUMNS, r, strict=True))
                                      for r in plain_events])
        got = _stored(db, [r[0] for r in gathered_leaves])
        want = _stored(db, [r[0] for r in plain_leaves])
        assert len(got) == 3
        # Equal but for the leaf hashes, which differ by construction.
        assert [r[1:] for r in got] == [r[1:] for r in want]
        assert [r[0] for r in got] == [r[0] for r in gathered_leaves]
        assert got[0][4] == {"n": 0, "who": "检察院", "none": None}

    @ON_POSTGRES  # SQLite gathers nothing
    def test_a_constraint_broken_by_gathered_rows_fails_the_block(self, db: Database) -> None:
        leaves, events = _rows(2)
        orphan = ("attestation", {}, None, secrets.token_bytes(32), NOW)  # no such leaf

        def gather() -> None:
            with db.write() as s, deferred.gathering(s):
                waiting = deferred.gathered(s)
                assert waiting is not None
                waiting.add(LEAVES, LEAF_COLUMNS, leaves)
                waiting.add(EVENTS, EVENT_COLUMNS, [*events, orphan])

        with pytest.raises(IntegrityError):
            gather()
        assert _stored(db, [r[0] for r in leaves]) == []

    def test_nothing_is_sent_when_the_block_raises(self, db: Database) -> None:
        leaves, _ = _rows(2)

        def gather() -> None:
            with db.write() as s, deferred.gathering(s):
                waiting = deferred.gathered(s)
                if waiting is not None:
                    waiting.add(LEAVES, LEAF_COLUMNS, leaves)
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError):
            gather()
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(LogLeaf)) == 0
            assert deferred.gathered(s) is None

    @ON_POSTGRES
    def test_a_nested_block_leaves_the_sending_to_the_outer_one(self, db: Database) -> None:
        leaves, _ = _rows(2)
        with db.write() as s, deferred.gathering(s):
            with deferred.gathering(s):
                waiting = deferred.gathered(s)
                assert waiting is not None
                waiting.add(LEAVES, LEAF_COLUMNS, leaves)
            assert deferred.gathered(s) is waiting  # still waiting
            assert s.scalar(select(func.count()).select_from(LogLeaf)) == 0
        assert sorted(_stored_leaves(db)) == sorted(r[0] for r in leaves)


def _stored_leaves(db: Database) -> list[bytes]:
    with db.read() as s:
        return list(s.scalars(select(LogLeaf.leaf_hash)))
