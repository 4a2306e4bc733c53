"""FastAPI dependencies: the request's context and its one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from deletion_audit.context import AppContext


async def get_context(request: Request) -> AppContext:
    # async: FastAPI runs a plain function dependency in its thread pool, a hop per
    # request for what is only an attribute read.
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]


def _read_session(ctx: Context) -> Iterator[Session]:
    with ctx.db.read() as session:
        yield session


def _write_session(ctx: Context) -> Iterator[Session]:
    # scope="function": the commit happens before the response is sent, so a 2xx always
    # means stored (CONVENTIONS: one transaction per request).
    with ctx.db.write() as session:
        yield session


DbRead = Annotated[Session, Depends(_read_session)]
DbWrite = Annotated[Session, Depends(_write_session, scope="function")]
