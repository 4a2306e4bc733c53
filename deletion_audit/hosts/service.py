"""What an enrolled agent reads and reports: its bound scopes, its heartbeat, and the
checkpoint it monitors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases import retention
from deletion_audit.hosts.schemas import AgentScope, ManifestRef
from deletion_audit.log.service import latest_checkpoint
from deletion_audit.models import Agent, Binding, Manifest, Scope, ScopeKind


def bound_scopes(session: Session, *, agent_id: int) -> Sequence[Scope]:
    """The scopes the agent is bound to now (live bindings only)."""
    return session.execute(
        select(Scope).join(Binding, Binding.scope_id == Scope.id)
        .where(Binding.agent_id == agent_id, Binding.unbound_at.is_(None))
        .order_by(Scope.id)
    ).scalars().all()


def is_bound(session: Session, *, agent_id: int, scope_id: int) -> bool:
    return session.execute(
        select(Binding.id).where(Binding.agent_id == agent_id, Binding.scope_id == scope_id,
                                 Binding.unbound_at.is_(None))
    ).first() is not None


def active_manifest(session: Session, *, case_id: int) -> Manifest | None:
    return session.execute(
        select(Manifest).where(Manifest.case_id == case_id, Manifest.state == "active")
    ).scalar_one_or_none()


def agent_scopes(session: Session, *, agent: Agent) -> list[AgentScope]:
    manifest = active_manifest(session, case_id=agent.case_id)
    ref = (ManifestRef(id=manifest.id, root=manifest.root.hex(), count=manifest.count)
           if manifest is not None else None)
    scopes = bound_scopes(session, agent_id=agent.id)
    aged = retention.scopes_under_rules(session, case_id=agent.case_id,
                                        scope_ids=[s.id for s in scopes])
    return [
        AgentScope(id=s.id, name=s.name, kind=ScopeKind(s.kind), spec=s.spec,
                   spec_digest=s.spec_digest, expects_data=s.expects_data,
                   location_codes=s.location_codes, manifest=ref,
                   timestamp_field=s.timestamp_field, ages=s.id in aged)
        for s in scopes
    ]


def checkpoint_note(session: Session) -> str | None:
    cp = latest_checkpoint(session)
    return cp.note if cp is not None else None


def record_heartbeat(
    session: Session, *, agent_id: int, report: dict[str, Any], now: datetime
) -> Agent:
    """Note that the agent is alive (liveness is judged on the domain clock)."""
    agent = session.get_one(Agent, agent_id)
    agent.last_seen_at = now
    agent.last_heartbeat = report
    session.flush()
    return agent
