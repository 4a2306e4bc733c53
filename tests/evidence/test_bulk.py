"""Bulk rows straight to the driver (deletion_audit/evidence/bulk.py): digests cut from one
blob on SQLite, COPY on PostgreSQL, the same rows either way."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from deletion_audit.db import Database
from deletion_audit.evidence import bulk
from deletion_audit.models import DeletedItem

COLUMNS = ("attestation_id", "digest", "case_id", "scope_id")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _rows(db: Database) -> list[tuple[int, bytes, int, int]]:
    with db.read() as s:
        return [(r.attestation_id, r.digest, r.case_id, r.scope_id) for r in s.execute(
            select(DeletedItem).order_by(DeletedItem.attestation_id, DeletedItem.digest)
        ).scalars()]


class TestInsertDigests:
    @pytest.mark.parametrize("count", [1, 2, 2500])
    def test_each_digest_is_one_row_with_the_fixed_columns_around_it(
        self, db: Database, count: int
    ) -> None:
        digests = sorted(secrets.token_bytes(32) for _ in range(count))
        with db.write() as s:
            bulk.insert_digests(s, "deleted_items", COLUMNS, digests, before=(7,),
                                after=(3, 5))
            bulk.insert_digests(s, "deleted_items", COLUMNS, [], before=(8,), after=(3, 5))
        assert _rows(db) == [(7, d, 3, 5) for d in digests]

    def test_digests_of_another_length_are_inserted_one_row_each(self, db: Database) -> None:
        odd = sorted([secrets.token_bytes(32), b"short", secrets.token_bytes(40)])
        with db.write() as s:
            bulk.insert_digests(s, "deleted_items", COLUMNS, odd, before=(9,), after=(1, 2))
        assert _rows(db) == [(9, d, 1, 2) for d in odd]

    def test_nothing_is_left_when_the_transaction_is_rolled_back(self, db: Database) -> None:
        def insert_then_fail() -> None:
            with db.write() as s:
                bulk.insert_digests(s, "deleted_items", COLUMNS,
                                    [secrets.token_bytes(32) for _ in range(100)],
                                    before=(4,), after=(1, 1))
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError):
            insert_then_fail()
        assert _rows(db) == []
