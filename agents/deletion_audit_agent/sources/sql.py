"""A SQL table: one item per row, the digest of its decoded content column.

SQLAlchemy is imported here only, lazily, behind the ``[sql]`` extra: the agent's plain
install has no ORM. Rows are streamed (server-side cursor where the driver has one) in key
order, so a 26-million-row table is scanned in bounded memory; NULL content is a skip.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from deletion_audit_agent.config import SqlAccess
from deletion_audit_agent.sources.base import Hashed, Removal, Seen, Skipped, Throttle

BATCH = 500
_YIELD_PER = 1000


class SqlSourceError(Exception):
    pass


def _decode(value: Any, encoding: str) -> bytes:
    if encoding == "raw":
        if isinstance(value, str):
            return value.encode("utf-8")
        return bytes(value)
    text = bytes(value).decode("ascii") if isinstance(value, bytes | memoryview) else str(value)
    if encoding == "hex":
        return bytes.fromhex(text)
    return base64.b64decode(text, validate=True)


def _seconds(value: Any) -> float | None:
    """A row's declared timestamp in POSIX seconds: a datetime (naive ones are UTC, as
    databases without zones usually store them), epoch seconds, or an ISO 8601 string;
    None when NULL or unreadable (the row is then left out of the age summary)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _locator(key: Sequence[Any]) -> str:
    return json.dumps(list(key), default=str, separators=(",", ":"))


class SqlSource:
    method = "sql-delete"
    grade = "logical"

    def __init__(self, access: SqlAccess, *, throttle: Throttle) -> None:
        try:
            import sqlalchemy as sa  # noqa: TID251 - the [sql] extra, imported lazily here only
        except ImportError:
            raise SqlSourceError("SQL scopes need the [sql] extra: pip install "
                                 "'deletion-audit[sql]'") from None
        self.access = access
        self.throttle = throttle
        self._sa = sa
        self.engine = sa.create_engine(access.url)
        schema, _, name = access.table.rpartition(".")
        self._keys: list[Any] = [sa.column(c) for c in access.key_columns]
        self._content: Any = sa.column(access.content_column)
        self._stamp: Any = (sa.column(access.timestamp_column)
                            if access.timestamp_column else None)
        self._columns: list[Any] = [*self._keys, self._content,
                                    *([self._stamp] if self._stamp is not None else [])]
        self._table = sa.table(name, *self._columns, schema=schema or None)

    def close(self) -> None:
        self.engine.dispose()

    def _select(self) -> Any:
        sa = self._sa
        query = sa.select(*self._columns).select_from(self._table)
        if self.access.filter:
            # The scope's filter is the prosecutor-visible spec, run read-only here.
            query = query.where(sa.text(f"({self.access.filter})"))
        return query.order_by(*self._keys)

    def _item(self, row: Sequence[Any]) -> Seen:
        n = len(self._keys)
        key, content = row[:n], row[n]
        locator = _locator(key)
        if content is None:
            return Skipped(locator, "null-content")
        try:
            data = _decode(content, self.access.encoding)
        except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
            return Skipped(locator, "undecodable")
        self.throttle.spend(len(data))
        modified = _seconds(row[n + 1]) if self._stamp is not None else None
        return Hashed(locator, hashlib.sha256(data).digest(), len(data), modified)

    def scan(self) -> Iterator[Seen]:
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_YIELD_PER).execute(
                self._select())
            for row in result:
                yield self._item(tuple(row))

    def delete(self, items: Sequence[tuple[str, bytes]]) -> Iterator[Removal]:
        sa = self._sa
        for start in range(0, len(items), BATCH):
            batch = items[start:start + BATCH]
            wanted = dict(batch)
            keys = [tuple(json.loads(locator)) for locator in wanted]
            match = sa.tuple_(*self._keys).in_(keys)
            with self.engine.begin() as conn:
                rows = conn.execute(sa.select(*self._columns)
                                    .select_from(self._table).where(match)).all()
                doomed = []
                for row in rows:
                    seen = self._item(tuple(row))
                    if isinstance(seen, Hashed) and wanted.get(seen.locator) == seen.digest:
                        doomed.append(tuple(row)[:len(self._keys)])
                if doomed:
                    conn.execute(sa.delete(self._table).where(
                        sa.tuple_(*self._keys).in_(doomed)))
            done = {_locator(key) for key in doomed}
            for locator in wanted:
                yield Removal(locator, locator in done,
                              None if locator in done else "row changed or gone since the scan")

    def exists(self, locator: str) -> bool:
        sa = self._sa
        key = tuple(json.loads(locator))
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sa.literal(1)).select_from(self._table).where(
                sa.tuple_(*self._keys) == sa.tuple_(*key))).first()
        return row is not None
