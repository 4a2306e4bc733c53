"""``GET /api/v1/cases/{id}/export``: the case's bundle, streamed as it is written."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.service import check_case, prepare_export, stream_bundle
from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import Context, DbRead
from deletion_audit.identity.deps import CurrentUser, bearer

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["bundles"])

# The court tier discloses digests, pseudonyms, locations and salts; the public tier
# counts and proofs only.
TIER_ACTIONS = {Tier.COURT: Action.EXPORT_BUNDLES, Tier.PUBLIC: Action.EXPORT_PUBLIC_BUNDLES}


def _route() -> dict[str, Any]:
    route = bearer(404, 409)
    route["responses"] = {200: {"content": {"application/zip": {}},
                                "description": "The bundle (a zip, zip64 when large)."},
                          **route["responses"]}
    return route


@router.get("/export", response_class=StreamingResponse, **_route())
def export_case(
    case_id: int, caller: CurrentUser, session: DbRead, ctx: Context,
    tier: Annotated[Tier, Query(description="court or public")],
    consistent_with: Annotated[list[int] | None, Query(
        description="sizes of checkpoints you kept: the bundle proves its log extends "
        "each (the latest 10,000 checkpoints are always covered)", max_length=100)] = None,
) -> StreamingResponse:
    """The case's evidence bundle of ``tier``, verifiable offline with
    ``deletion-audit verify``. Its checkpoint is signed now and covers every event it
    carries."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=TIER_ACTIONS[tier])
    prepare_export(ctx.db, keys=ctx.keys, settings=ctx.settings, clock=ctx.clock,
                   case_id=case_id)
    sizes = consistent_with or []
    check_case(ctx.db, case_id=case_id, consistent_with=sizes)
    name = f"case-{case_id}-{tier.value}.zip"
    return StreamingResponse(
        stream_bundle(ctx.db, keys=ctx.keys, case_id=case_id, tier=tier, now=ctx.clock.now(),
                      consistent_with=sizes),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'})
