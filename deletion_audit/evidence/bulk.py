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


def insert_digests(session: Session, table: str, columns: Sequence[str],
                   digests: Sequence[bytes], *, before: tuple[Any, ...] = (),
                   after: tuple[Any, ...] = ()) -> None:
    """Rows ``(*before, digest, *after)``, one a digest, all of 32 bytes: on SQLite in one
    statement that cuts them from a single blob (a recursive count, the rows made inside
    SQLite: about a third of the cost of binding a million rows one by one, as a replay
    records them); elsewhere as :func:`insert_rows`."""
    if not digests:
        return
    if session.get_bind().dialect.name != "sqlite" or any(len(d) != 32 for d in digests):
        insert_rows(session, table, columns, [(*before, d, *after) for d in digests])
        return
    names = ", ".join(columns)
    fixed = [*(["?"] * len(before)), "substr(?, i * 32 + 1, 32)", *(["?"] * len(after))]
    sql = ("WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "  # noqa: S608 - fixed names
           f"INSERT INTO {table} ({names}) SELECT {', '.join(fixed)} FROM k")
    _driver_connection(session).execute(
        sql, (len(digests) - 1, *before, b"".join(digests), *after))


def insert_items(session: Session, rows: Sequence[ItemRow]) -> None:
    insert_rows(session, "manifest_items", ITEM_COLUMNS, rows)


def insert_nodes(session: Session, rows: Sequence[NodeRow]) -> None:
    insert_rows(session, "manifest_nodes", NODE_COLUMNS, rows)
