"""``CurrentUser``: the person behind a request's bearer token.

Authentication reads in its own short session, never the request's: the request's write
transaction (SQLite: the database write lock) has not started when this runs, so a
throttled ``last_used_at`` write here cannot wait on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from deletion_audit.deps import Context
from deletion_audit.errors import Forbidden
from deletion_audit.identity import tokens
from deletion_audit.schemas import error_responses

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# OpenAPI: a person's endpoint declares the bearer scheme (app.SECURITY_SCHEMES).
BEARER: dict[str, Any] = {"security": [{"bearerToken": []}]}


def bearer(*codes: int) -> dict[str, Any]:
    """Route keyword arguments for an endpoint people call with a token: its security
    scheme and its error responses (401 and 403 always, plus ``codes``)."""
    return {"openapi_extra": BEARER,
            "responses": error_responses(*sorted({401, 403, 422, *codes}))}


@dataclass(frozen=True)
class Caller:
    """The authenticated person, detached from any session."""

    user_id: int
    name: str
    display_name: str
    organisation_id: int
    token_id: str
    read_only: bool


def current_user(request: Request, ctx: Context) -> Caller:
    now = ctx.clock.now()
    with ctx.db.read() as session:
        user, token = tokens.authenticate(
            session, authorization=request.headers.get("authorization"), now=now
        )
    if token.read_only and request.method not in SAFE_METHODS:
        raise Forbidden(f"token {token.public_id} is read-only; this request writes")
    if tokens.needs_touch(token, now):
        with ctx.db.write() as session:
            tokens.touch(session, token_id=token.id, now=now)
    return Caller(user_id=user.id, name=user.name, display_name=user.display_name,
                  organisation_id=user.organisation_id, token_id=token.public_id,
                  read_only=token.read_only)


CurrentUser = Annotated[Caller, Depends(current_user)]
