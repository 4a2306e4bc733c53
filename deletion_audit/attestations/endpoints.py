"""``POST /api/v1/attestations``: a signed statement (a DSSE envelope), from an agent
(RFC 9421 signed request) or from a person (bearer token)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from deletion_audit.attestations import ingest, people
from deletion_audit.attestations.known import Outcome
from deletion_audit.attestations.writer import StatementWriter
from deletion_audit.context import AppContext
from deletion_audit.deps import get_context
from deletion_audit.errors import AuditError, Unauthorized
from deletion_audit.hosts.signatures import raw_body, signature_params, verify_signature
from deletion_audit.identity.deps import current_user
from deletion_audit.schemas import error_responses

router = APIRouter(prefix="/api/v1/attestations", tags=["attestations"])

_OPENAPI: dict[str, Any] = {
    # Either scheme: an agent signs the request, a person sends a bearer token.
    "security": [{"httpSignature": []}, {"bearerToken": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "a DSSE envelope carrying an in-toto Statement v1",
        "required": ["payload", "payloadType", "signatures"]}}}},
}


@router.post("", status_code=201, openapi_extra=_OPENAPI,
             responses={201: {"description": "the receipt: statement_id, leaf_hash, seq "
                              "(null for a person's statement), received_at"},
                        **error_responses(400, 401, 403, 404, 409, 413, 422, 503)})
async def submit(request: Request) -> JSONResponse:
    """Ingest a signed statement: an agent's scan or deletion statement, or a person's
    vendor, custody (v2) or deidentify statement. The same statement again gets its
    original answer; a refusal is recorded and logged, and is never evidence.

    Signature headers choose the agent path (its behaviour is PROTOCOL.md's); a bearer
    token without them chooses the person's."""
    # The context and the body are read here, not as dependencies: resolving them was a
    # twentieth of the request's cost on this path.
    ctx = await get_context(request)
    envelope = await raw_body(request)
    headers = request.headers
    signed = "signature-input" in headers or "signature" in headers
    scheme = headers.get("authorization", "").partition(" ")[0].lower()
    try:
        if signed or scheme != "bearer":
            if not signed:
                raise Unauthorized("authentication required: an agent signs the request "
                                   "(RFC 9421), a person sends 'Authorization: Bearer "
                                   "<token>'")
            outcome = await _from_agent(request, ctx, envelope)
        else:
            outcome = await run_in_threadpool(_from_person, request, ctx, envelope)
    except AuditError as exc:
        ctx.metrics.refusals.labels(reason=exc.code).inc()
        raise
    if outcome.refused is not None:
        ctx.metrics.refusals.labels(reason=outcome.refused).inc()
    return JSONResponse(outcome.body, status_code=outcome.status)


async def _from_agent(request: Request, ctx: AppContext, envelope: bytes) -> Outcome:
    """The request's signature and the envelope are checked here, on no database; the
    writer then reads the agent's status, records the nonce and ingests, in a transaction
    shared with the statements that arrived meanwhile, and answers after its commit. A
    revoked agent's signature passes: ingest judges key status (earlier outcome, grace)."""
    transport_now = datetime.now(UTC)
    params = signature_params(request.headers, transport_now)
    writer = _writer(request, ctx)
    agent = writer.cached_key(params.keyid)
    if agent is None:
        agent = await run_in_threadpool(writer.load_key, params.keyid)
    verify_signature(agent, params, method=request.method, url=str(request.url),
                     headers=request.headers, body=envelope)
    prepared = ingest.prepare(agent.public_key, envelope)
    future = writer.submit(agent, nonce=params.nonce, prepared=prepared,
                           now=ctx.clock.now(), transport_now=transport_now)
    return await asyncio.wrap_future(future)


def _writer(request: Request, ctx: AppContext) -> StatementWriter:
    # Made on first use, one per application (no await between the look and the set).
    writer: StatementWriter | None = getattr(request.app.state, "statement_writer", None)
    if writer is None:
        writer = request.app.state.statement_writer = StatementWriter(
            ctx.db, loop=asyncio.get_running_loop())
    return writer


def _from_person(request: Request, ctx: AppContext, envelope: bytes) -> Outcome:
    who = current_user(request, ctx)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        return people.ingest_person(session, user_id=who.user_id, envelope=envelope, now=now)
