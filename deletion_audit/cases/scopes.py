"""Scopes (where data may live), data flows (where copies may have gone) and bindings
(which agents look at a scope). All are verdict inputs, so every change is logged.

The server holds each scope's specification; an agent's configuration refers to scope ids
and every scan names the SHA-256 of the JCS specification it obeyed (``spec_digest``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.service import log_event
from deletion_audit.core.canonical import canonical_json
from deletion_audit.errors import Conflict, NotFound, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    DataFlow,
    DataFlowKind,
    Party,
    PartyRole,
    Scope,
    ScopeKind,
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
Identifier = Annotated[str, StringConstraints(pattern=rf"^{_IDENT}$")]
QualifiedName = Annotated[str, StringConstraints(pattern=rf"^{_IDENT}(\.{_IDENT})?$")]
# Location codes match the manifest entries' ``source``: codes, never paths or names.
LocationCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DirectorySpec(_Spec):
    root: Annotated[str, StringConstraints(pattern=r"^/.{0,1023}$")] = Field(
        description="absolute path of the tree's root on the agent's host"
    )
    exclude: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=256)]],
                       Field(max_length=100)] = []


class SqlSpec(_Spec):
    table: QualifiedName
    key_columns: Annotated[list[Identifier], Field(min_length=1, max_length=16)]
    content_column: Identifier
    encoding: Literal["raw", "base64", "hex"] = "raw"
    """How the content column holds the item's bytes; the digest is of the decoded bytes."""
    filter: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    """A WHERE condition the agent adds, on the company's own database, read-only."""


class ObjectStoreSpec(_Spec):
    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
                                               max_length=512)]
    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63,
                                             pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")]
    prefix: Annotated[str, StringConstraints(max_length=1024)] = ""


class SealedContainerSpec(_Spec):
    path: Annotated[str, StringConstraints(pattern=r"^/.{0,1023}$")] = Field(
        description="absolute path of the sealed container (one file) on the custodian's host"
    )


SPECS: Mapping[ScopeKind, type[_Spec]] = {
    ScopeKind.DIRECTORY: DirectorySpec,
    ScopeKind.SQL: SqlSpec,
    ScopeKind.OBJECT_STORE: ObjectStoreSpec,
    ScopeKind.SEALED_CONTAINER: SealedContainerSpec,
}


class _Extras(BaseModel):
    location_codes: Annotated[list[LocationCode], Field(max_length=200)]
    timestamp_field: Annotated[str, StringConstraints(pattern=r"^\S{1,128}$")] | None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                     for e in exc.errors())


def parse_spec(kind: ScopeKind, spec: Mapping[str, Any]) -> dict[str, Any]:
    try:
        model = SPECS[kind].model_validate(dict(spec))
    except ValidationError as exc:
        raise Unprocessable(f"{kind.value} scope spec: {_problems(exc)}") from None
    return model.model_dump(mode="json")


def spec_digest(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(spec)).hexdigest()


def declare_scope(
    session: Session, *, access: CaseAccess, name: str, kind: ScopeKind,
    spec: Mapping[str, Any], expects_data: bool, location_codes: list[str],
    timestamp_field: str | None, now: datetime,
) -> Logged[Scope]:
    name = name.strip()
    if not name or len(name) > 128:
        raise Unprocessable("a scope name is 1-128 characters")
    clean = parse_spec(kind, spec)
    try:
        extras = _Extras(location_codes=location_codes, timestamp_field=timestamp_field)
    except ValidationError as exc:
        raise Unprocessable(f"scope: {_problems(exc)}") from None
    codes = sorted(set(extras.location_codes))
    taken = session.execute(
        select(Scope.id).where(Scope.case_id == access.case.id, Scope.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"case {access.case.id} already has a scope named {name!r}")
    digest = spec_digest(clean)
    row = Scope(case_id=access.case.id, party_id=access.party.id, name=name, kind=kind.value,
                spec=clean, spec_digest=digest, expects_data=expects_data,
                location_codes=codes, timestamp_field=extras.timestamp_field,
                created_at=now, created_by=access.user_id)
    session.add(row)
    session.flush()
    leaf = log_event(session, "scope", {
        "action": "declared", "caseId": access.case.id, "scopeId": row.id,
        "partyId": access.party.id, "name": name, "kind": kind.value, "spec": clean,
        "specDigest": digest, "expectsData": expects_data, "locationCodes": codes,
        "timestampField": extras.timestamp_field, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def scopes_query(case_id: int) -> Select[Scope]:
    return select(Scope).where(Scope.case_id == case_id)


def get_scope(session: Session, *, case_id: int, scope_id: int) -> Scope:
    row = session.get(Scope, scope_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"case {case_id} has no scope {scope_id}")
    return row


def declare_data_flow(
    session: Session, *, access: CaseAccess, kind: DataFlowKind, description: str,
    destination: str, scope_id: int | None, vendor_party_id: int | None, now: datetime,
) -> Logged[DataFlow]:
    case_id = access.case.id
    description, destination = description.strip(), destination.strip()
    if not description or not destination:
        raise Unprocessable("a data flow needs a description and a destination")
    if scope_id is not None:
        scope = session.get(Scope, scope_id)
        if scope is None or scope.case_id != case_id:
            raise Unprocessable(f"case {case_id} has no scope {scope_id} to cover this flow")
    if vendor_party_id is not None:
        vendor = session.get(Party, vendor_party_id)
        if vendor is None or vendor.case_id != case_id or vendor.role != PartyRole.VENDOR:
            raise Unprocessable(f"party {vendor_party_id} is not a vendor party of case "
                                f"{case_id}")
    row = DataFlow(case_id=case_id, party_id=access.party.id, kind=kind.value,
                   description=description, destination=destination, scope_id=scope_id,
                   vendor_party_id=vendor_party_id, created_at=now, created_by=access.user_id)
    session.add(row)
    session.flush()
    leaf = log_event(session, "data-flow", {
        "action": "declared", "caseId": case_id, "dataFlowId": row.id,
        "partyId": access.party.id, "kind": kind.value, "description": description,
        "destination": destination, "scopeId": scope_id, "vendorPartyId": vendor_party_id,
        "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def data_flows_query(case_id: int) -> Select[DataFlow]:
    return select(DataFlow).where(DataFlow.case_id == case_id)


def find_agent(session: Session, *, case_id: int, public_id: str) -> Agent:
    agent = session.execute(
        select(Agent).where(Agent.public_id == public_id, Agent.case_id == case_id)
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"case {case_id} has no agent {public_id!r}")
    return agent


def _live_binding(session: Session, scope_id: int, agent_id: int) -> Binding | None:
    return session.execute(
        select(Binding).where(Binding.scope_id == scope_id, Binding.agent_id == agent_id,
                              Binding.unbound_at.is_(None))
    ).scalar_one_or_none()


def bind(
    session: Session, *, access: CaseAccess, scope_id: int, agent_public_id: str,
    by: int | None, now: datetime,
) -> Logged[Binding]:
    """Bind an agent of the case to a scope (by the prosecutor, or ``by=None`` through an
    enrollment token)."""
    case_id = access.case.id
    scope = get_scope(session, case_id=case_id, scope_id=scope_id)
    agent = find_agent(session, case_id=case_id, public_id=agent_public_id)
    if agent.status != AgentStatus.ACTIVE:
        raise Conflict(f"agent {agent.public_id} is {agent.status}; only active agents bind")
    if _live_binding(session, scope.id, agent.id) is not None:
        raise Conflict(f"agent {agent.public_id} is already bound to scope {scope.id}")
    row = Binding(case_id=case_id, scope_id=scope.id, agent_id=agent.id, created_at=now,
                  created_by=by)
    session.add(row)
    session.flush()
    leaf = log_event(session, "binding", {
        "action": "bound", "caseId": case_id, "bindingId": row.id, "scopeId": scope.id,
        "specDigest": scope.spec_digest, "agentId": agent.public_id, "by": by,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def unbind(
    session: Session, *, access: CaseAccess, scope_id: int, agent_public_id: str,
    now: datetime,
) -> Logged[Binding]:
    case_id = access.case.id
    scope = get_scope(session, case_id=case_id, scope_id=scope_id)
    agent = find_agent(session, case_id=case_id, public_id=agent_public_id)
    row = _live_binding(session, scope.id, agent.id)
    if row is None:
        raise NotFound(f"agent {agent.public_id} is not bound to scope {scope.id}")
    row.unbound_at, row.unbound_by = now, access.user_id
    session.flush()
    leaf = log_event(session, "binding", {
        "action": "unbound", "caseId": case_id, "bindingId": row.id, "scopeId": scope.id,
        "agentId": agent.public_id, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def bindings_query(scope_id: int) -> Select[Binding]:
    return select(Binding).where(Binding.scope_id == scope_id)


def agent_public_ids(session: Session, agent_ids: set[int]) -> dict[int, str]:
    if not agent_ids:
        return {}
    rows = session.execute(select(Agent.id, Agent.public_id).where(Agent.id.in_(agent_ids)))
    return {agent_id: public_id for agent_id, public_id in rows}  # noqa: C416 - Row pairs
