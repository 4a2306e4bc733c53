"""``/api/v1/cases/{id}/scopes``, ``.../data-flows`` and ``.../scopes/{sid}/bindings``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter
from sqlalchemy.orm import Session

from deletion_audit.cases import scopes
from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.cases.schemas import (
    BindingCreate,
    BindingRead,
    DataFlowCreate,
    DataFlowRead,
    ScopeCreate,
    ScopeRead,
)
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Binding, DataFlow, DataFlowKind, Scope, ScopeKind
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["scopes"])


def _hex(leaf_hash: bytes | None) -> str | None:
    return leaf_hash.hex() if leaf_hash else None


def scope_read(row: Scope, leaf_hash: bytes | None = None) -> ScopeRead:
    return ScopeRead(
        id=row.id, party_id=row.party_id, name=row.name, kind=ScopeKind(row.kind),
        spec=row.spec, spec_digest=row.spec_digest, expects_data=row.expects_data,
        location_codes=row.location_codes, timestamp_field=row.timestamp_field,
        created_at=row.created_at, leaf_hash=_hex(leaf_hash),
    )


def data_flow_read(row: DataFlow, leaf_hash: bytes | None = None) -> DataFlowRead:
    coverage: Literal["scope", "vendor_statement", "none"] = (
        "scope" if row.scope_id is not None
        else "vendor_statement" if row.vendor_party_id is not None else "none"
    )
    return DataFlowRead(
        id=row.id, party_id=row.party_id, kind=DataFlowKind(row.kind),
        description=row.description, destination=row.destination, scope_id=row.scope_id,
        vendor_party_id=row.vendor_party_id, coverage=coverage, created_at=row.created_at,
        leaf_hash=_hex(leaf_hash),
    )


def _binding_reads(
    session: Session, rows: Sequence[Binding], leaf_hash: bytes | None = None
) -> list[BindingRead]:
    agents = scopes.agent_public_ids(session, {b.agent_id for b in rows})
    return [
        BindingRead(id=b.id, scope_id=b.scope_id, agent_id=agents[b.agent_id],
                    created_at=b.created_at, created_by=b.created_by, unbound_at=b.unbound_at,
                    leaf_hash=_hex(leaf_hash))
        for b in rows
    ]


@router.post("/scopes", status_code=201, response_model=ScopeRead, **bearer(404, 409))
def declare_scope(
    case_id: int, body: ScopeCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> ScopeRead:
    """Declare a place data may live (for the caller's party): a directory tree, a SQL
    source or an object-store prefix."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.DECLARE_SCOPES)
    logged = scopes.declare_scope(
        session, access=access, name=body.name, kind=body.kind, spec=body.spec,
        expects_data=body.expects_data, location_codes=body.location_codes,
        timestamp_field=body.timestamp_field, now=ctx.clock.now(),
    )
    return scope_read(logged.row, logged.leaf_hash)


@router.get("/scopes", response_model=Page[ScopeRead], **bearer(400, 404))
def list_scopes(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[ScopeRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    rows, cursor = paginate(session, scopes.scopes_query(case_id), key=Scope.id, page=page,
                            list_name="scopes")
    return Page(items=[scope_read(r) for r in rows], next_cursor=cursor)


@router.get("/scopes/{scope_id}", response_model=ScopeRead, **bearer(404))
def get_scope(case_id: int, scope_id: int, caller: CurrentUser, session: DbRead) -> ScopeRead:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    return scope_read(scopes.get_scope(session, case_id=case_id, scope_id=scope_id))


@router.post("/data-flows", status_code=201, response_model=DataFlowRead, **bearer(404))
def declare_data_flow(
    case_id: int, body: DataFlowCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> DataFlowRead:
    """Declare a flow that may hold copies (vendor, cloud upload, backup), covered by a
    scope or by a vendor party's statement."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.DECLARE_DATA_FLOWS)
    logged = scopes.declare_data_flow(
        session, access=access, kind=body.kind, description=body.description,
        destination=body.destination, scope_id=body.scope_id,
        vendor_party_id=body.vendor_party_id, now=ctx.clock.now(),
    )
    return data_flow_read(logged.row, logged.leaf_hash)


@router.get("/data-flows", response_model=Page[DataFlowRead], **bearer(400, 404))
def list_data_flows(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[DataFlowRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    rows, cursor = paginate(session, scopes.data_flows_query(case_id), key=DataFlow.id,
                            page=page, list_name="data-flows")
    return Page(items=[data_flow_read(r) for r in rows], next_cursor=cursor)


@router.post("/scopes/{scope_id}/bindings", status_code=201, response_model=BindingRead,
             **bearer(404, 409))
def bind_agent(
    case_id: int, scope_id: int, body: BindingCreate, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> BindingRead:
    """Bind an agent of the case to the scope (several agents per scope)."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.BIND_SCOPES)
    logged = scopes.bind(session, access=access, scope_id=scope_id,
                         agent_public_id=body.agent_id, by=caller.user_id, now=ctx.clock.now())
    return _binding_reads(session, [logged.row], logged.leaf_hash)[0]


@router.get("/scopes/{scope_id}/bindings", response_model=Page[BindingRead],
            **bearer(400, 404))
def list_bindings(
    case_id: int, scope_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[BindingRead]:
    """Every binding of the scope, unbound ones included (the verdict reads history)."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    scopes.get_scope(session, case_id=case_id, scope_id=scope_id)
    rows, cursor = paginate(session, scopes.bindings_query(scope_id), key=Binding.id,
                            page=page, list_name="bindings")
    return Page(items=_binding_reads(session, rows), next_cursor=cursor)


@router.delete("/scopes/{scope_id}/bindings/{agent_id}", response_model=BindingRead,
               **bearer(404))
def unbind_agent(
    case_id: int, scope_id: int, agent_id: str, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> BindingRead:
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.BIND_SCOPES)
    logged = scopes.unbind(session, access=access, scope_id=scope_id,
                           agent_public_id=agent_id, now=ctx.clock.now())
    return _binding_reads(session, [logged.row], logged.leaf_hash)[0]
