"""What a verdict replay knows so far: the case's agents, people's keys, scopes and clock,
as the earlier events left them (the base the event handlers build on)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from deletion_audit.verdicts.replay_events import ReplayError, ReplayEvent


@dataclass(frozen=True)
class ReplayAgent:
    pk: int
    key: Ed25519PublicKey


@dataclass
class ReplayState:
    session: Session
    case_id: int
    agents: dict[str, ReplayAgent] = field(default_factory=dict)
    user_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    scopes: set[int] = field(default_factory=set)
    clock: datetime | None = None
    verified: Mapping[tuple[str, bytes], bytes | None] = field(default_factory=dict)
    """(envelope SHA-256, raw public key) of signatures the caller verified on those exact
    bytes with that key (a bundle's verifier, which checked every envelope already), with
    the verified payload when the caller kept it."""

    @property
    def now(self) -> datetime:
        if self.clock is None:
            raise ReplayError("no timed event precedes this one")
        return self.clock

    def _agent(self, ev: ReplayEvent, public_id: object) -> ReplayAgent:
        agent = self.agents.get(str(public_id))
        if agent is None:
            raise ReplayError(f"agent {public_id} has no earlier key registration", at=ev)
        return agent

    def _scope(self, ev: ReplayEvent, scope_id: object) -> int:
        if not isinstance(scope_id, int) or scope_id not in self.scopes:
            raise ReplayError(f"scope {scope_id} was not declared by an earlier event", at=ev)
        return scope_id
