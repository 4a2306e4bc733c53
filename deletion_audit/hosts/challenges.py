"""Challenges: a fresh nonce per (agent, scope) that one scan must answer. Every issued
challenge is a logged (restricted) event; the verdict records each scan's origin."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import Conflict, NotFound
from deletion_audit.hosts.service import is_bound
from deletion_audit.models import Agent, AgentStatus, Binding, Challenge, ChallengeOrigin, Scope

# An agent's own challenge is short-lived: it proves freshness, not that anyone asked.
ON_DEMAND_TTL = timedelta(minutes=15)


def issue_challenge(
    session: Session, *, agent: Agent, scope_id: int, origin: ChallengeOrigin,
    ttl: timedelta, issued_by: int | None, now: datetime, session_id: int | None = None,
) -> Challenge:
    if not is_bound(session, agent_id=agent.id, scope_id=scope_id):
        raise NotFound(f"scope {scope_id} is not bound to agent {agent.public_id}")
    row = Challenge(case_id=agent.case_id, agent_id=agent.id, scope_id=scope_id,
                    nonce=secrets.token_hex(32), origin=origin.value, issued_at=now,
                    expires_at=now + ttl, issued_by=issued_by, session_id=session_id)
    session.add(row)
    session.flush()
    event = {
        "caseId": agent.case_id, "challengeId": row.id, "agentId": agent.public_id,
        "scopeId": scope_id, "nonce": row.nonce, "origin": origin.value,
        "expiresAt": format_timestamp(row.expires_at), "by": issued_by,
    }
    if session_id is not None:
        event["sessionId"] = session_id
    log_event(session, "challenge", event, now=now)
    return row


def open_challenges(session: Session, *, agent_id: int, now: datetime) -> Sequence[Challenge]:
    """Unexpired, unused challenges of the agent's live bindings."""
    return session.execute(
        select(Challenge)
        .join(Binding, (Binding.scope_id == Challenge.scope_id)
              & (Binding.agent_id == Challenge.agent_id))
        .where(Challenge.agent_id == agent_id, Challenge.expires_at > now,
               Challenge.used_by_scan_id.is_(None), Binding.unbound_at.is_(None))
        .order_by(Challenge.id)
    ).scalars().all()


# A challenge a person issues leaves the company time to run its scan (DESIGN: reviews give
# 72 hours to respond).
ISSUED_TTL = timedelta(hours=72)


def issue_case_challenges(
    session: Session, *, case_id: int, scope_ids: Sequence[int] | None, ttl: timedelta,
    issued_by: int, now: datetime,
) -> list[tuple[Challenge, Agent]]:
    """A fresh challenge for every live binding of an active agent to the given scopes of
    the case (all of its scopes when ``scope_ids`` is None), each logged."""
    query = select(Binding, Agent).join(Agent, Agent.id == Binding.agent_id).join(
        Scope, Scope.id == Binding.scope_id,
    ).where(Scope.case_id == case_id, Binding.unbound_at.is_(None),
            Agent.status == AgentStatus.ACTIVE)
    if scope_ids is not None:
        known = set(session.execute(select(Scope.id).where(
            Scope.case_id == case_id, Scope.id.in_(scope_ids))).scalars())
        unknown = sorted(set(scope_ids) - known)
        if unknown:
            raise NotFound(f"no scope {unknown[0]} in case {case_id}")
        query = query.where(Binding.scope_id.in_(scope_ids))
    bindings = session.execute(query.order_by(Binding.scope_id, Agent.id)).all()
    if not bindings:
        raise Conflict("no active agent is bound to these scopes: bind one first")
    return [
        (issue_challenge(session, agent=agent, scope_id=binding.scope_id,
                         origin=ChallengeOrigin.PROSECUTOR, ttl=ttl, issued_by=issued_by,
                         now=now), agent)
        for binding, agent in bindings
    ]
