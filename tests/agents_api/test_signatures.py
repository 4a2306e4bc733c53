"""RFC 9421 signed requests: each refusal is distinct (PROTOCOL.md, "Signed requests")."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from sqlalchemy import func, select

from deletion_audit.core import keys
from deletion_audit.models import RequestNonce
from tests.support.agents import AgentClient
from tests.support.log import LogEnv
from tests.support.world import World

HEARTBEAT = "/api/v1/agents/heartbeat"
BEAT = {"outbox": 0, "dead_letters": 0, "last_checkpoint_size": None}


def _code(r: Any) -> str:
    code: str = r.json()["code"]
    return code


class TestSignedRequests:
    def test_a_signed_heartbeat_is_answered(self, agent: AgentClient, env: LogEnv) -> None:
        r = agent.post(HEARTBEAT, json={"outbox": 2, "dead_letters": 1,
                                        "last_checkpoint_size": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["heartbeat_seconds"] == 300
        assert body["tasks"] == 0
        assert body["checkpoint"].startswith(env.ctx.keys.origin)

    def test_clock_skew_is_refused_with_the_servers_time(self, agent: AgentClient) -> None:
        r = agent.post(HEARTBEAT, json=BEAT,
                       created=datetime.now(UTC) - timedelta(seconds=301))
        assert r.status_code == 401
        assert _code(r) == "clock_skew"
        server_time = datetime.fromisoformat(r.json()["server_time"])
        assert abs(server_time - datetime.now(UTC)) < timedelta(seconds=5)

    def test_a_signature_from_the_future_is_clock_skew_too(self, agent: AgentClient) -> None:
        r = agent.get("/api/v1/agents/scopes",
                      created=datetime.now(UTC) + timedelta(seconds=400))
        assert _code(r) == "clock_skew"

    def test_a_replayed_nonce_is_refused(self, agent: AgentClient) -> None:
        nonce = secrets.token_urlsafe(16)
        assert agent.post(HEARTBEAT, json=BEAT, nonce=nonce).status_code == 200
        r = agent.post(HEARTBEAT, json=BEAT, nonce=nonce)
        assert r.status_code == 401
        assert _code(r) == "replayed"

    def test_an_unknown_agent_is_refused(self, agent: AgentClient) -> None:
        r = agent.post(HEARTBEAT, json=BEAT, key_id="agt_0000000000000000")
        assert r.status_code == 401
        assert _code(r) == "unknown_agent"

    def test_a_signature_by_another_key_is_refused(self, agent: AgentClient) -> None:
        r = agent.post(HEARTBEAT, json=BEAT, key=keys.generate())
        assert r.status_code == 401
        assert _code(r) == "bad_signature"

    def test_an_unsigned_request_is_refused(self, client: TestClient, agent: AgentClient) -> None:
        r = client.post(HEARTBEAT, json=BEAT)
        assert r.status_code == 401
        assert _code(r) == "bad_signature"

    def test_a_body_that_does_not_match_its_digest_is_refused(
        self, agent: AgentClient
    ) -> None:
        r = agent.post(HEARTBEAT, json=BEAT,
                       body_after_signing=b'{"outbox": 9, "dead_letters": 0}')
        assert r.status_code == 400
        assert _code(r) == "bad_content_digest"

    @pytest.mark.parametrize("path", [HEARTBEAT, "/api/v1/attestations"])
    def test_a_signature_that_does_not_cover_the_body_is_refused(
        self, client: TestClient, agent: AgentClient, path: str
    ) -> None:
        body = b'{"outbox": 0, "dead_letters": 0}'
        request = client.build_request("POST", path, content=body,
                                       headers={"Content-Type": "application/json"})
        HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                          key_resolver=MappingKeyResolver(
                              public_keys={}, private_keys={agent.agent_id: agent.key})).sign(
            request, key_id=agent.agent_id, label="da", created=datetime.now(UTC),
            nonce=secrets.token_urlsafe(16), covered_component_ids=("@method", "@target-uri"))
        r = client.send(request)
        assert (r.status_code, _code(r)) == (401, "bad_signature")
        assert "content-digest" in r.json()["message"]

    def test_a_revoked_agent_is_refused(
        self, client: TestClient, world: World, agent: AgentClient
    ) -> None:
        r = client.post(f"{world.url}/agents/{agent.agent_id}/revoke",
                        headers=world.prosecutor.headers,
                        json={"kind": "decommissioned", "reason": "主机已更换"})
        assert r.status_code == 200, r.text
        r = agent.post(HEARTBEAT, json=BEAT)
        assert r.status_code == 403
        assert _code(r) == "revoked"

    def test_a_refused_nonce_is_not_burnt(self, agent: AgentClient, env: LogEnv) -> None:
        nonce = secrets.token_urlsafe(16)
        assert agent.post(HEARTBEAT, json=BEAT, nonce=nonce,
                          key=keys.generate()).status_code == 401
        assert agent.post(HEARTBEAT, json=BEAT, nonce=nonce).status_code == 200
        with env.db.read() as s:
            assert s.execute(select(func.count()).select_from(RequestNonce)).scalar() == 1

    def test_refusals_are_counted_by_reason(self, client: TestClient,
                                            agent: AgentClient) -> None:
        agent.post(HEARTBEAT, json=BEAT, key=keys.generate())
        metrics = client.get("/metrics").text
        assert 'deletion_audit_refusals_total{reason="bad_signature"} 1.0' in metrics

    def test_a_request_over_2_mib_is_refused(self, agent: AgentClient) -> None:
        r = agent.post("/api/v1/attestations", content=b"x" * ((2 << 20) + 1))
        assert r.status_code == 413
        assert _code(r) == "payload_too_large"


class TestNonceTable:
    def test_nonces_older_than_twice_the_window_are_pruned(
        self, agent: AgentClient, env: LogEnv
    ) -> None:
        assert agent.post(HEARTBEAT, json=BEAT, nonce="old-nonce-0123456789").status_code == 200
        with env.db.write() as s:
            row = s.execute(select(RequestNonce)).scalar_one()
            row.created_at = datetime.now(UTC) - timedelta(seconds=601)
        assert agent.post(HEARTBEAT, json=BEAT).status_code == 200
        with env.db.read() as s:
            nonces = s.execute(select(RequestNonce.nonce)).scalars().all()
        assert "old-nonce-0123456789" not in nonces
        assert len(nonces) == 1
