"""Deletions the server asks for: a request on a scope becomes a ``delete`` task for every
active agent bound to it.

A task is done for an agent once that agent has scanned the scope clean (a finished scan,
started after the request, that found no manifest item); it lapses when the request
expires. Whether a task runs at all is the host's decision: an agent deletes on request
only if its local configuration allows remote deletion (DESIGN, Agent ↔ server).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import Exists

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.service import log_event
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.events import Logged
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    DeletionRequest,
    ScanItem,
    ScanRecord,
    Scope,
)

# Long enough for a host that is only reachable during office hours to pick it up.
DEFAULT_TTL = timedelta(days=7)
MAX_REASON = 2000

TaskState = Literal["open", "done", "expired"]


def _clean_scan_since(
    agent_id: int, scope_id: int | InstrumentedAttribute[int],
    since: datetime | InstrumentedAttribute[datetime],
) -> Exists:
    """SQL: the agent has a finished scan of the scope, started at or after ``since``, that
    found no manifest item."""
    return exists().where(
        ScanRecord.agent_id == agent_id, ScanRecord.scope_id == scope_id,
        ScanRecord.finished.is_(True), ScanRecord.started_at >= since,
        ~exists().where(ScanItem.scan_pk == ScanRecord.id))


def request_deletion(
    session: Session, *, access: CaseAccess, scope_id: int, reason: str | None,
    ttl: timedelta, now: datetime,
) -> Logged[DeletionRequest]:
    """Ask every active agent bound to the scope to delete what it finds there (logged)."""
    case_id = access.case.id
    scope = session.get(Scope, scope_id)
    if scope is None or scope.case_id != case_id:
        raise NotFound(f"no scope {scope_id} in case {case_id}")
    if reason is not None:
        reason = reason.strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise BadRequest(f"reason must be at most {MAX_REASON} characters")
    agents = bound_agents(session, scope_id=scope_id)
    if not agents:
        raise Conflict(f"no active agent is bound to scope {scope_id}: bind one first")
    row = DeletionRequest(case_id=case_id, scope_id=scope_id, reason=reason,
                          requested_by=access.membership.user_id, created_at=now,
                          expires_at=now + ttl, leaf_hash=b"")
    session.add(row)
    session.flush()
    row.leaf_hash = log_event(session, "deletion-request", {
        "caseId": case_id, "requestId": row.id, "scopeId": scope_id,
        "agentIds": [a.public_id for a in agents], "reason": reason,
        "expiresAt": format_timestamp(row.expires_at),
        "by": access.membership.user_id,
    }, now=now)
    session.flush()
    return Logged(row, row.leaf_hash)


def bound_agents(session: Session, *, scope_id: int) -> Sequence[Agent]:
    return session.execute(
        select(Agent).join(Binding, Binding.agent_id == Agent.id)
        .where(Binding.scope_id == scope_id, Binding.unbound_at.is_(None),
               Agent.status == AgentStatus.ACTIVE)
        .order_by(Agent.id)
    ).scalars().all()


def open_tasks(session: Session, *, agent_id: int, now: datetime) -> Sequence[DeletionRequest]:
    """The unexpired requests on the agent's live bindings it has not yet answered with a
    clean scan."""
    return session.execute(
        select(DeletionRequest)
        .join(Binding, and_(Binding.scope_id == DeletionRequest.scope_id,
                            Binding.agent_id == agent_id, Binding.unbound_at.is_(None)))
        .where(DeletionRequest.expires_at > now,
               ~_clean_scan_since(agent_id, DeletionRequest.scope_id,
                                  DeletionRequest.created_at))
        .order_by(DeletionRequest.id)
    ).scalars().all()


@dataclass(frozen=True)
class AgentTaskState:
    agent_id: str
    state: TaskState


def task_states(
    session: Session, *, request: DeletionRequest, now: datetime
) -> list[AgentTaskState]:
    """Where the request stands with each agent bound to its scope."""
    states = []
    for agent in bound_agents(session, scope_id=request.scope_id):
        done = session.scalar(select(_clean_scan_since(
            agent.id, request.scope_id, request.created_at)))
        state: TaskState = "done" if done else "expired" if now >= request.expires_at \
            else "open"
        states.append(AgentTaskState(agent.public_id, state))
    return states
