"""Revoking an agent's key: ``decommissioned`` (it may flush its outbox for 24 hours) or
``compromised`` with a since-time (its statements made from then on are void)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.permissions import PROSECUTOR
from deletion_audit.cases.scopes import find_agent
from deletion_audit.cases.service import log_event
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import Conflict, Forbidden, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.models import Agent, AgentStatus, Binding


def revoke(
    session: Session, *, access: CaseAccess, agent_public_id: str, kind: AgentStatus,
    since: datetime | None, reason: str, now: datetime,
) -> Logged[Agent]:
    case_id = access.case.id
    agent = find_agent(session, case_id=case_id, public_id=agent_public_id)
    if agent.party_id != access.party.id and access.role != PROSECUTOR:
        raise Forbidden("only a prosecutor may revoke another party's agent")
    current = AgentStatus(agent.status)
    # Escalation is allowed (decommissioned → compromised: a key lost after the host was
    # retired); nothing else changes a revoked key.
    if current is AgentStatus.COMPROMISED or (current is kind):
        raise Conflict(f"agent {agent.public_id} is already {current.value}")
    if kind is AgentStatus.ACTIVE:
        raise Unprocessable("revocation is decommissioned or compromised")
    if kind is AgentStatus.DECOMMISSIONED and since is not None:
        raise Unprocessable("since applies to a compromised key only")
    if kind is AgentStatus.COMPROMISED:
        since = since or now
        if since.tzinfo is None:
            raise Unprocessable("since must carry a time zone")
        agent.compromised_since = since
    return record_revocation(session, agent=agent, kind=kind, since=since,
                             by=access.user_id, reason=reason, now=now)


def record_revocation(
    session: Session, *, agent: Agent, kind: AgentStatus, since: datetime | None, by: int,
    reason: str, now: datetime,
) -> Logged[Agent]:
    """Set the agent's revoked state and log its (public) key revocation."""
    case_id = agent.case_id
    agent.status = kind.value
    agent.status_changed_at = now
    if agent.revoked_at is None:
        agent.revoked_at = now
    agent.revoked_by = by
    agent.revocation_reason = reason.strip()
    session.flush()
    # Public: whoever verifies a bundle must know the key stopped counting. The free-text
    # reason may name people, so it stays in the database.
    leaf = log_event(session, "key-revocation", {
        "keyId": agent.key_id, "subjectType": "agent", "subjectId": agent.public_id,
        "caseId": str(case_id), "kind": kind.value,
        "since": format_timestamp(since) if since is not None else None,
        "revokedAt": format_timestamp(agent.revoked_at),
    }, now=now)
    return Logged(row=agent, leaf_hash=leaf)


def live_bindings(session: Session, *, agent_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {a: [] for a in agent_ids}
    if not agent_ids:
        return out
    rows = session.execute(
        select(Binding.agent_id, Binding.scope_id)
        .where(Binding.agent_id.in_(agent_ids), Binding.unbound_at.is_(None))
        .order_by(Binding.scope_id))
    for agent_id, scope_id in rows:
        out[agent_id].append(scope_id)
    return out
