"""Agent liveness on the domain clock: silence for 3 heartbeat intervals is ``late``, for 5
``dark`` (the interval is the one the server set for the agent). An episode of silence
starts at the agent's last sign of life (its last heartbeat, else its enrollment); each
finding is judged once per episode, and a heartbeat starts a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.core.predicates import format_timestamp
from deletion_audit.models import Agent, AgentStatus, Case, CaseStatus, Finding, Judgment

INTERVALS: dict[Finding, int] = {Finding.LATE: 3, Finding.DARK: 5}


@dataclass(frozen=True)
class Silence:
    agent_id: int
    finding: Finding
    since: datetime

    @property
    def episode(self) -> str:
        return f"{self.finding.value}:agent:{self.agent_id}:{format_timestamp(self.since)}"


def last_sign_of_life(agent: Agent) -> datetime:
    return agent.last_seen_at or agent.enrolled_at


def due_silences(session: Session, *, now: datetime) -> list[Silence]:
    """Every late or dark finding due at ``now`` and not yet judged."""
    shortest = session.execute(select(func.min(Agent.heartbeat_seconds)).where(
        Agent.status == AgentStatus.ACTIVE.value)).scalar_one()
    if shortest is None:
        return []
    # An index-friendly bound first (nobody is late before 3 of the shortest intervals),
    # then each agent's own interval.
    bound = now - timedelta(seconds=shortest * INTERVALS[Finding.LATE])
    seen = func.coalesce(Agent.last_seen_at, Agent.enrolled_at)
    # An agent already judged dark for this silence has nothing more due: left out here,
    # so agents dark for months cost nothing per tick.
    judged_dark = (select(Judgment.id).where(
        Judgment.agent_id == Agent.id, Judgment.finding == Finding.DARK.value,
        Judgment.since == seen).exists())
    agents = session.execute(
        select(Agent).join(Case, Case.id == Agent.case_id)
        .where(Agent.status == AgentStatus.ACTIVE.value, seen <= bound,
               Case.status != CaseStatus.CLOSED.value, ~judged_dark)
        .order_by(Agent.id)).scalars().all()
    due = [Silence(agent.id, finding, last_sign_of_life(agent))
           for agent in agents for finding, n in INTERVALS.items()
           if last_sign_of_life(agent) + timedelta(seconds=agent.heartbeat_seconds * n) <= now]
    if not due:
        return []
    judged = set(session.execute(select(Judgment.episode).where(
        Judgment.agent_id.in_({s.agent_id for s in due}))).scalars())
    return [s for s in due if s.episode not in judged]


def still_silent(agent: Agent, since: datetime) -> bool:
    return agent.status == AgentStatus.ACTIVE.value and last_sign_of_life(agent) <= since


def agent_context(agent: Agent) -> dict[str, object]:
    host = (agent.host or {}).get("hostname")
    return {"agent": f"{agent.public_id}（{host}）" if host else agent.public_id,
            "interval": agent.heartbeat_seconds}


def detail(agent: Agent, finding: Finding) -> str:
    return (f"no heartbeat for {INTERVALS[finding]} intervals of "
            f"{agent.heartbeat_seconds} s since {format_timestamp(last_sign_of_life(agent))}")
