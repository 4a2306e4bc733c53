"""``/api/v1/cases/{id}/verdict`` and ``/api/v1/cases/{id}/items``: thin shells over the
verdict domain."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import Context, DbRead
from deletion_audit.errors import Conflict
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Verdict
from deletion_audit.pagination import Page, PageParams
from deletion_audit.verdicts import items, service
from deletion_audit.verdicts.queries import ItemState
from deletion_audit.verdicts.schemas import AsOf, ItemRead, Report, VerdictRead

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["verdicts"])


def verdict_read(row: Verdict, *, stale: bool) -> VerdictRead:
    return VerdictRead(
        case_id=row.case_id, version=row.version, outcome=row.outcome,  # type: ignore[arg-type]
        as_of=AsOf(log_size=row.as_of_log_size, time=row.as_of), stale=stale,
        report=Report.model_validate(row.report), statement_id=row.statement_id,
        envelope=row.envelope.decode(), leaf_hash=row.leaf_hash.hex())


@router.get("/verdict", response_model=VerdictRead, **bearer(404))
def get_verdict(case_id: int, caller: CurrentUser, session: DbRead, ctx: Context) -> VerdictRead:
    """The case's latest verdict version (computed now if it has none yet), with its
    ``as_of`` and its service-signed statement. ``stale``: a change waits for the next
    recomputation, which follows within seconds."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_VERDICTS)
    row = service.latest_verdict(session, case_id=case_id)
    if row is not None:
        return verdict_read(row, stale=service.is_stale(session, case_id=case_id))
    # Reading takes no write lock unless there is nothing to read yet.
    try:
        with ctx.db.write() as writer:
            computed = service.verdict_for_reading(writer, case_id=case_id,
                                                   service_key=ctx.keys.service_key,
                                                   now=ctx.clock.now())
    except (IntegrityError, Conflict):
        # A concurrent reader (or the job) stored the first version: read that one.
        with ctx.db.read() as reader:
            found = service.latest_verdict(reader, case_id=case_id)
        if found is None:
            raise
        computed = found
    with ctx.db.read() as fresh:  # the request's snapshot predates the new version
        return verdict_read(computed, stale=service.is_stale(fresh, case_id=case_id))


Kind = Literal["image", "video", "record", "document", "other"]


@router.get("/items", response_model=Page[ItemRead], **bearer(400, 404),
            response_class=Response)
def list_items(
    case_id: int, caller: CurrentUser, session: DbRead, ctx: Context, page: PageParams,
    state: Annotated[ItemState | None, Query(description="present, deleted or unseen")] = None,
    kind: Annotated[Kind | None, Query()] = None,
    scope: Annotated[int | None, Query(description="a scope id of the case")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The active manifest's items with their state, keyset-paged by ordinal;
    ``format=csv`` streams the whole filtered list (no paging)."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_ITEMS)
    where = items.ItemFilter(state=state, kind=kind, scope_id=scope)
    if format == "csv":
        items.check_filter(session, case_id=case_id, where=where)
        return StreamingResponse(
            items.item_csv(ctx.db, case_id=case_id, where=where), media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="case-{case_id}-items.csv"'})
    rows, cursor = items.item_page(session, case_id=case_id, where=where,
                                   cursor=page.cursor, limit=page.limit)
    body = Page[ItemRead](items=rows, next_cursor=cursor)
    return Response(body.model_dump_json(), media_type="application/json")
