"""Bulk writes of manifest rows: COPY on PostgreSQL, executemany on SQLite.

The ORM would spend most of an import building objects; these go straight to the driver,
inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

ITEM_COLUMNS = ("manifest_id", "ordinal", "digest", "kind", "size", "subject", "source", "pdq")
NODE_COLUMNS = ("manifest_id", "level", "idx", "hash")

ItemRow = tuple[int, int, bytes, int, int, bytes | None, str | None, bytes | None]
NodeRow = tuple[int, int, int, bytes]


def _driver_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


def insert_rows(session: Session, table: str, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    conn = _driver_connection(session)
    names = ", ".join(columns)
    if session.get_bind().dialect.name == "postgresql":
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608 - fixed names


def insert_items(session: Session, rows: Sequence[ItemRow]) -> None:
    insert_rows(session, "manifest_items", ITEM_COLUMNS, rows)


def insert_nodes(session: Session, rows: Sequence[NodeRow]) -> None:
    insert_rows(session, "manifest_nodes", NODE_COLUMNS, rows)
