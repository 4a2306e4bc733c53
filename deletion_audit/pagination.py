"""Keyset pagination, the one convention every list endpoint uses.

A list is ordered by a unique, increasing integer key. A request carries ``limit`` (1–200,
default 50) and optionally the ``cursor`` from the previous page; a response is
``{"items": [...], "next_cursor": "..." | null}``. The cursor is opaque to clients: URL-safe
base64 of ``{"l": list name, "a": last key}``. The list name keeps a cursor from one list
from being replayed against another. Keyset (not offset) paging stays fast on a large list
and never skips or repeats a row when rows are added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from deletion_audit.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class PageQuery:
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


def page_query(
    cursor: Annotated[
        str | None,
        Query(max_length=256, description="next_cursor of the previous page; omit for the first"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = (
        DEFAULT_LIMIT
    ),
) -> PageQuery:
    return PageQuery(cursor=cursor, limit=limit)


PageParams = Annotated[PageQuery, Depends(page_query)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(list_name: str, after: int) -> str:
    raw = json.dumps({"l": list_name, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        body = None
    if (
        not isinstance(body, dict) or body.get("l") != list_name
        or not isinstance(body.get("a"), int) or isinstance(body.get("a"), bool)
    ):
        raise BadRequest(
            f"cursor is not a {list_name} cursor from this server; "
            "start again without a cursor"
        )
    after: int = body["a"]
    return after


def paginate(
    session: Session,
    stmt: Select[R],
    *,
    key: InstrumentedAttribute[int],
    page: PageQuery,
    list_name: str,
) -> tuple[Sequence[R], str | None]:
    """One page of ``stmt`` (a single-entity select) ordered by ``key``, and the cursor of
    the next page (``None`` on the last). Fetches one row more than asked to know."""
    if page.cursor is not None:
        stmt = stmt.where(key > decode_cursor(list_name, page.cursor))
    rows = session.execute(stmt.order_by(key).limit(page.limit + 1)).scalars().all()
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = getattr(rows[-1], key.key)
    return rows, encode_cursor(list_name, last)
