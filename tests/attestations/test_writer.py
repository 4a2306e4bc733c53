"""Agents' statements through the group-commit writer (attestations/writer.py): statements
queued at once are stored in their chains, and the request's own checks (its nonce) still
come before the statement's, in PROTOCOL.md's order."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deletion_audit.attestations import ingest
from deletion_audit.attestations.writer import StatementWriter
from deletion_audit.models import (
    Attestation,
    DeletedItem,
    Refusal,
    RequestNonce,
    VerdictMark,
)
from tests.conftest import T0
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World

BEFORE = T0 - timedelta(minutes=1)


@pytest.fixture
def scope(client: TestClient, world: World) -> dict[str, Any]:
    return declare_scope(client, world)


@pytest.fixture
def agent(client: TestClient, world: World, scope: dict[str, Any]) -> AgentClient:
    return enroll(client, world, scope_ids=[scope["id"]])


def _count(env: LogEnv, model: Any) -> int:
    with env.db.read() as s:
        count: int = s.execute(select(func.count()).select_from(model)).scalar_one()
    return count


class TestQueuedAtOnce:
    def test_statements_of_several_agents_queued_at_once_are_stored_in_their_chains(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        scope = declare_scope(client, world)
        agents = [enroll(client, world, scope_ids=[scope["id"]]) for _ in range(3)]
        writer = StatementWriter(env.db)
        futures = []
        for agent in agents:
            key = writer.load_key(agent.agent_id)
            prev = None
            for seq in range(4):
                signed = agent.sign_statement(agent.deletion(
                    seq=seq, prev=prev, scope=scope, deleted_at=BEFORE,
                    digests=[secrets.token_hex(32) for _ in range(3)]))
                prev = signed.statement_id
                futures.append((signed, writer.submit(
                    key, nonce=secrets.token_urlsafe(16),
                    prepared=ingest.prepare(key.public_key, signed.envelope),
                    now=T0, transport_now=datetime.now(UTC))))
        outcomes = [(signed, future.result(timeout=60)) for signed, future in futures]
        writer.close()
        assert [o.status for _, o in outcomes] == [201] * 12
        assert all(o.body["statement_id"] == s.statement_id for s, o in outcomes)
        with env.db.read() as s:
            chains = s.execute(select(Attestation.agent_id, Attestation.seq, Attestation.prev,
                                      Attestation.statement_id)
                               .order_by(Attestation.agent_id, Attestation.seq)).all()
        assert len(chains) == 12
        for before, after in itertools.pairwise(chains):
            if before.agent_id == after.agent_id:
                assert (after.seq, after.prev) == (before.seq + 1, before.statement_id)
        assert _count(env, DeletedItem) == 36
        assert _count(env, RequestNonce) == 12
        assert _count(env, Refusal) == 0
        # One mark for a new verdict per transaction that stored statements of the case.
        assert 1 <= _count(env, VerdictMark) <= 12


class TestRequestChecksFirst:
    def test_a_statement_sent_with_a_used_nonce_is_refused_and_not_stored(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = secrets.token_urlsafe(16)
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first, nonce=nonce).status_code == 201
        second = agent.sign_statement(agent.deletion(seq=1, prev=first.statement_id,
                                                     scope=scope, deleted_at=BEFORE))
        r = agent.submit(second, nonce=nonce)
        assert (r.status_code, r.json()["code"]) == (401, "replayed")
        assert (_count(env, Attestation), _count(env, Refusal)) == (1, 0)
        assert agent.submit(second).status_code == 201

    def test_a_bad_envelope_with_a_used_nonce_is_answered_replayed(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = secrets.token_urlsafe(16)
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first, nonce=nonce).status_code == 201
        r = agent.post("/api/v1/attestations", content=b'{"payload": 1}', nonce=nonce)
        assert (r.status_code, r.json()["code"]) == (401, "replayed")
        r = agent.post("/api/v1/attestations", content=b'{"payload": 1}')
        assert (r.status_code, r.json()["code"]) == (422, "bad_envelope")
        assert _count(env, RequestNonce) == 1  # a refused request's nonce is not kept

    def test_an_agent_enrolled_after_the_writer_started_is_known(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first).status_code == 201
        later = enroll(client, world, scope_ids=[scope["id"]])
        signed = later.sign_statement(later.deletion(seq=0, prev=None, scope=scope,
                                                     deleted_at=BEFORE))
        assert later.submit(signed).status_code == 201


class TestScopeReference:
    @pytest.mark.parametrize("scope_id", ["9" * 30, "\u00b2", "-1"])
    def test_a_scope_id_that_names_no_scope_is_unbound(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv, scope_id: str
    ) -> None:
        signed = agent.sign_statement(agent.deletion(
            seq=0, prev=None, scope={**scope, "id": scope_id}, deleted_at=BEFORE))
        r = agent.submit(signed)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "unbound_scope"
        assert (_count(env, Attestation), _count(env, Refusal)) == (0, 1)

