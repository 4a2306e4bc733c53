"""``POST /api/v1/attestations``: an agent's signed statement (a DSSE envelope)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from deletion_audit.attestations import ingest
from deletion_audit.deps import Context, DbWrite
from deletion_audit.errors import AuditError
from deletion_audit.hosts.signatures import SIGNED, SigningAgent, raw_body
from deletion_audit.schemas import error_responses

router = APIRouter(prefix="/api/v1/attestations", tags=["attestations"])

_OPENAPI: dict[str, Any] = {
    **SIGNED,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "a DSSE envelope carrying an in-toto Statement v1",
        "required": ["payload", "payloadType", "signatures"]}}}},
}


@router.post("", status_code=201, openapi_extra=_OPENAPI,
             responses={201: {"description": "the receipt: statement_id, leaf_hash, seq, "
                              "received_at"},
                        **error_responses(400, 401, 403, 409, 413, 422, 503)})
def submit(
    agent: SigningAgent, envelope: Annotated[bytes, Depends(raw_body)], session: DbWrite,
    ctx: Context,
) -> JSONResponse:
    """Ingest a scan or deletion statement. The same statement again gets its original
    answer; a refusal is recorded and logged, and is never evidence."""
    try:
        outcome = ingest.ingest(session, agent_id=agent.id, envelope=envelope,
                                now=ctx.clock.now())
    except AuditError as exc:
        ctx.metrics.refusals.labels(reason=exc.code).inc()
        raise
    if outcome.refused is not None:
        ctx.metrics.refusals.labels(reason=outcome.refused).inc()
    return JSONResponse(outcome.body, status_code=outcome.status)
