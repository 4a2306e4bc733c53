"""Inserts gathered while a block runs and sent at its end as one statement, on PostgreSQL.

The writer's set-wise step (attestations/writer.py) inserts into five tables for a batch of
statements besides the attestations: the log's leaves and events, the deletion records,
the requests' nonces, the verdict marks. None of those rows is read back in the step, so
on PostgreSQL they wait here and go out together, one ``INSERT ... SELECT FROM unnest(...)``
per table joined as data-modifying ``WITH`` clauses of a single statement: one round trip
instead of five, and, since each column is one array parameter, the same SQL text whatever
the number of rows (psycopg then prepares it once per connection). The deleted items,
ten thousand for a large statement, still go by COPY, which is cheaper per row.
PostgreSQL checks the foreign keys between them (an event's leaf) at the end of that
statement, as it would at the end of each insert.

Each value goes through its column's own bind processing (SQLAlchemy's, the same as an
ordinary insert), so what is stored is the same. On SQLite, where a statement costs no
round trip, :func:`gathering` changes nothing: each insert runs where it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

_KEY = "deferred_inserts"


@dataclass
class _Rows:
    table: Table
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class Gathered:
    """The rows waiting, by table and columns, in the order their tables first came."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, tuple[str, ...]], _Rows] = {}

    def add(self, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        key = (table.name, tuple(columns))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Rows(table, tuple(columns))
        group.rows.extend(rows)

    def send(self, session: Session) -> None:
        """Insert everything waiting, in one statement; then nothing waits."""
        groups = [g for g in self._groups.values() if g.rows]
        self._groups.clear()
        if not groups:
            return
        dialect = session.get_bind().dialect
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for i, group in enumerate(groups):
            arrays, names = [], []
            for j, name in enumerate(group.columns):
                column = group.table.c[name]
                # The dialect's own type (psycopg's JSON wraps its values, for one).
                process: Callable[[Any], Any] | None = (
                    column.type.dialect_impl(dialect).bind_processor(dialect))
                values = [row[j] for row in group.rows]
                params[f"p{i}_{j}"] = values if process is None else [process(v) for v in values]
                arrays.append(f"%(p{i}_{j})s::{column.type.compile(dialect=dialect)}[]")
                names.append(dialect.identifier_preparer.quote(name))
            table = dialect.identifier_preparer.format_table(group.table)
            clauses.append(f"d{i} AS (INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608 - names from the metadata, values as parameters
                           f"SELECT * FROM unnest({', '.join(arrays)}))")
        # Data-modifying WITH clauses run to completion whether or not the query reads them.
        sql = f"WITH {', '.join(clauses)} SELECT 1"
        session.connection().exec_driver_sql(sql, params)


def gathered(session: Session) -> Gathered | None:
    """The inserts being gathered in ``session``, if a :func:`gathering` block is open:
    a caller adds its rows there instead of inserting them."""
    found: Gathered | None = session.info.get(_KEY)
    return found


@contextmanager
def gathering(session: Session) -> Iterator[None]:
    """On PostgreSQL, gather the inserts the block's callers add (:func:`gathered`) and
    send them as one statement when it ends; if it raises, they are dropped with it (the
    caller's transaction is rolled back). On SQLite, nothing: inserts run at once."""
    if session.get_bind().dialect.name != "postgresql" or _KEY in session.info:
        yield
        return
    waiting = session.info[_KEY] = Gathered()
    try:
        yield
        waiting.send(session)
    finally:
        session.info.pop(_KEY, None)
