"""A small case for verdict tests: a signed manifest of six items registered through the API,
a declared scope, and the company's agent enrolled for it through the API (``env``,
``client`` and ``world`` come from tests/conftest.py, on both engines).

    case.scan(present=[case.digests[0]])      # a challenged, complete scan
    case.delete([case.digests[0]])
    case.verdict()["outcome"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deletion_audit.clock import FixedClock
from deletion_audit.core import manifest as mf
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.support import evidence
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World


@dataclass
class Chain:
    """An agent's place in its statement chain."""

    agent: AgentClient
    seq: int = 0
    prev: str | None = None


@dataclass
class Case:
    client: TestClient
    world: World
    env: LogEnv
    scope: dict[str, Any]
    agent: AgentClient
    entries: list[mf.ManifestEntry]
    chains: dict[str, Chain] = field(default_factory=dict)
    scans: int = 0

    @property
    def digests(self) -> list[str]:
        return [e.digest for e in self.entries]

    def _chain(self, agent: AgentClient | None) -> Chain:
        agent = agent or self.agent
        return self.chains.setdefault(agent.agent_id, Chain(agent))

    def challenge(self, agent: AgentClient | None = None,
                  scope: dict[str, Any] | None = None) -> str:
        agent = agent or self.agent
        r = agent.post("/api/v1/agents/challenges", json={"scope_id": (scope or self.scope)["id"]})
        assert r.status_code == 201, r.text
        nonce: str = r.json()["nonce"]
        return nonce

    def scan(self, present: list[str] | None = None, *, challenged: bool = True,
             agent: AgentClient | None = None, scope: dict[str, Any] | None = None,
             minutes: int = 0, **overrides: Any) -> dict[str, Any]:
        chain = self._chain(agent)
        scope = scope or self.scope
        nonce = self.challenge(chain.agent, scope) if challenged else None
        self.scans += 1
        predicate = chain.agent.scan(
            seq=chain.seq, prev=chain.prev, scope=scope, scan_id=f"scan-{self.scans}",
            challenge=nonce, present=present or [],
            finished_at=self.env.clock.now() + timedelta(minutes=minutes), **overrides)
        return self._submit(chain, predicate)

    def delete(self, digests: list[str], *, agent: AgentClient | None = None,
               minutes: int = 0) -> dict[str, Any]:
        chain = self._chain(agent)
        predicate = chain.agent.deletion(
            seq=chain.seq, prev=chain.prev, scope=self.scope, digests=digests,
            deleted_at=self.env.clock.now() + timedelta(minutes=minutes))
        return self._submit(chain, predicate)

    def _submit(self, chain: Chain, predicate: Any) -> dict[str, Any]:
        signed = chain.agent.sign_statement(predicate)
        r = chain.agent.submit(signed)
        assert r.status_code == 201, r.text
        chain.seq, chain.prev = chain.seq + 1, signed.statement_id
        body: dict[str, Any] = r.json()
        return body

    def recompute(self, *, after: timedelta = timedelta(minutes=1)) -> list[int]:
        """Run the debounced job as the scheduler would, ``after`` from now."""
        return recompute_verdicts(self.env.db, keys=self.env.ctx.keys,
                                  clock=FixedClock(self.env.clock.now() + after))

    def verdict(self, *, recompute: bool = True) -> dict[str, Any]:
        if recompute:
            self.recompute()
        r = self.client.get(f"{self.world.url}/verdict", headers=self.world.prosecutor.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def register_manifest(client: TestClient, world: World, directory: Path,
                      entries: list[mf.ManifestEntry],
                      supersede_reason: str | None = None) -> dict[str, Any]:
    key = evidence.examiner_key(world)
    signed = evidence.write_signed(directory, key, case=world.case_number, items=entries)
    data = {"supersede_reason": supersede_reason} if supersede_reason else None
    r = client.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
        "manifest": ("m.jsonl", signed.path.read_bytes()),
        "envelope": ("e.json", json.dumps(signed.envelope).encode())}, data=data)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def reasons(verdict: dict[str, Any]) -> set[str]:
    return {r["code"] for r in verdict["report"]["reasons"]}


@pytest.fixture
def case(client: TestClient, world: World, env: LogEnv, tmp_path: Path) -> Case:
    entries = sorted(evidence.entries(6), key=lambda e: e.digest)
    register_manifest(client, world, tmp_path, entries)
    scope = declare_scope(client, world)
    agent = enroll(client, world, scope_ids=[scope["id"]])
    return Case(client=client, world=world, env=env, scope=scope, agent=agent, entries=entries)
