"""``POST /api/v1/attestations``: a signed statement (a DSSE envelope), from an agent
(RFC 9421 signed request) or from a person (bearer token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from deletion_audit.attestations import ingest, people
from deletion_audit.deps import Context
from deletion_audit.errors import AuditError, Unauthorized
from deletion_audit.hosts.signatures import SignedBy, authenticate, raw_body, remember_nonce
from deletion_audit.identity.deps import Caller, current_user
from deletion_audit.schemas import error_responses

router = APIRouter(prefix="/api/v1/attestations", tags=["attestations"])

_OPENAPI: dict[str, Any] = {
    # Either scheme: an agent signs the request, a person sends a bearer token.
    "security": [{"httpSignature": []}, {"bearerToken": []}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "a DSSE envelope carrying an in-toto Statement v1",
        "required": ["payload", "payloadType", "signatures"]}}}},
}


def submitter(
    request: Request, ctx: Context, body: Annotated[bytes, Depends(raw_body)]
) -> SignedBy | Caller:
    """The agent whose signature is on the request, or the person whose token it carries.
    Signature headers choose the agent path (its behaviour is PROTOCOL.md's); a bearer
    token without them chooses the person's."""
    headers = request.headers
    signed = "signature-input" in headers or "signature" in headers
    scheme = headers.get("authorization", "").partition(" ")[0].lower()
    try:
        if signed or scheme != "bearer":
            if not signed:
                raise Unauthorized("authentication required: an agent signs the request "
                                   "(RFC 9421), a person sends 'Authorization: Bearer "
                                   "<token>'")
            # Ingest judges a revoked agent's statements itself (earlier outcome, grace).
            return authenticate(ctx, method=request.method, url=str(request.url),
                                headers=headers, body=body, allow_revoked=True,
                                now=datetime.now(UTC), remember=False)
        return current_user(request, ctx)
    except AuditError as exc:
        ctx.metrics.refusals.labels(reason=exc.code).inc()
        raise


@router.post("", status_code=201, openapi_extra=_OPENAPI,
             responses={201: {"description": "the receipt: statement_id, leaf_hash, seq "
                              "(null for a person's statement), received_at"},
                        **error_responses(400, 401, 403, 404, 409, 413, 422, 503)})
def submit(
    who: Annotated[SignedBy | Caller, Depends(submitter)],
    envelope: Annotated[bytes, Depends(raw_body)], ctx: Context,
) -> JSONResponse:
    """Ingest a signed statement: an agent's scan or deletion statement, or a person's
    vendor, custody (v2) or deidentify statement. The same statement again gets its
    original answer; a refusal is recorded and logged, and is never evidence."""
    now = ctx.clock.now()
    try:
        # The transaction opens and commits here, in this one worker thread (not in a
        # dependency's teardown, a thread hop later): on SQLite the write lock is held for
        # the statement's own work only — the hot path of every agent.
        with ctx.db.write() as session:
            if isinstance(who, SignedBy):
                # The request's nonce is recorded with the statement (one transaction).
                remember_nonce(session, who.id, who.nonce, datetime.now(UTC))
                outcome = ingest.ingest(session, agent=who, envelope=envelope, now=now)
            else:
                outcome = people.ingest_person(session, user_id=who.user_id,
                                               envelope=envelope, now=now)
    except AuditError as exc:
        ctx.metrics.refusals.labels(reason=exc.code).inc()
        raise
    if outcome.refused is not None:
        ctx.metrics.refusals.labels(reason=outcome.refused).inc()
    return JSONResponse(outcome.body, status_code=outcome.status)
