"""Scopes, challenges and tasks as an agent sees them; the case's agent list."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.models import Event, PartyRole
from tests.support import evidence
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World

CHALLENGES = "/api/v1/agents/challenges"


class TestScopes:
    def test_only_bound_scopes_are_listed(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        declare_scope(client, world, "other")
        r = agent.get("/api/v1/agents/scopes")
        assert r.status_code == 200, r.text
        scopes = r.json()["scopes"]
        assert [s["id"] for s in scopes] == [scope["id"]]
        assert scopes[0]["kind"] == "directory"
        assert scopes[0]["spec"] == {"root": "/srv/nas", "exclude": []}
        assert scopes[0]["manifest"] is None


class TestChallenges:
    def test_on_demand_challenge_is_short_lived_and_logged(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        r = agent.post(CHALLENGES, json={"scope_id": scope["id"]})
        assert r.status_code == 201, r.text
        challenge = r.json()
        assert challenge["origin"] == "agent"
        assert challenge["scope_id"] == scope["id"]
        assert len(challenge["nonce"]) == 64
        expires = challenge["expires_at"].replace("Z", "+00:00")
        assert expires.startswith((env.clock.now() + timedelta(minutes=15)).isoformat()[:19])
        with env.db.read() as s:
            logged = s.execute(select(Event).where(Event.type == "challenge")).scalars().all()
        assert [e.body["nonce"] for e in logged] == [challenge["nonce"]]

    def test_unbound_scope_gets_no_challenge(
        self, client: TestClient, world: World, agent: AgentClient
    ) -> None:
        other = declare_scope(client, world, "other")
        r = agent.post(CHALLENGES, json={"scope_id": other["id"]})
        assert r.status_code == 404

    def test_open_challenges_are_listed_until_they_expire(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        issued = agent.post(CHALLENGES, json={"scope_id": scope["id"]}).json()
        listed = agent.get(CHALLENGES).json()["challenges"]
        assert [c["id"] for c in listed] == [issued["id"]]
        tasks = agent.get("/api/v1/agents/tasks").json()["tasks"]
        assert [(t["kind"], t["scope_id"], t["challenge"]["nonce"]) for t in tasks] == [
            ("scan", scope["id"], issued["nonce"])]
        env.clock.advance(timedelta(minutes=15))
        assert agent.get(CHALLENGES).json()["challenges"] == []
        assert agent.get("/api/v1/agents/tasks").json()["tasks"] == []


class TestIssuedChallenges:
    def test_a_prosecutor_challenges_every_bound_agent(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        second = enroll(client, world, scope_ids=[scope["id"]])
        r = client.post(f"{world.url}/challenges", headers=world.prosecutor.headers, json={})
        assert r.status_code == 201, r.text
        issued = r.json()["challenges"]
        assert sorted(c["agent_id"] for c in issued) == sorted([agent.agent_id,
                                                                second.agent_id])
        assert {c["origin"] for c in issued} == {"prosecutor"}
        assert "nonce" not in issued[0]
        seen = agent.get(CHALLENGES).json()["challenges"]
        assert [(c["origin"], c["scope_id"]) for c in seen] == [("prosecutor", scope["id"])]
        expires = seen[0]["expires_at"].replace("Z", "+00:00")
        assert expires.startswith((env.clock.now() + timedelta(hours=72)).isoformat()[:19])

    def test_unknown_scope_and_no_binding(
        self, client: TestClient, world: World, agent: AgentClient
    ) -> None:
        h = world.prosecutor.headers
        missing = client.post(f"{world.url}/challenges", headers=h, json={"scope_ids": [9999]})
        assert missing.status_code == 404
        unbound = declare_scope(client, world, "unbound")
        r = client.post(f"{world.url}/challenges", headers=h,
                        json={"scope_ids": [unbound["id"]]})
        assert r.status_code == 409
        assert "bind one first" in r.json()["message"]


class TestCaseAgents:
    def test_people_list_the_case_agents_with_their_bindings(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        agent.post("/api/v1/agents/heartbeat", json={"outbox": 0, "dead_letters": 0})
        r = client.get(f"{world.url}/agents", headers=world.prosecutor.headers)
        assert r.status_code == 200, r.text
        [row] = r.json()["items"]
        assert row["agent_id"] == agent.agent_id
        assert row["status"] == "active"
        assert row["scope_ids"] == [scope["id"]]
        assert row["last_seen_at"] is not None

    def test_revocation_is_logged_publicly_and_not_repeated(
        self, client: TestClient, world: World, agent: AgentClient, env: LogEnv
    ) -> None:
        url = f"{world.url}/agents/{agent.agent_id}/revoke"
        body = {"kind": "compromised", "since": "2026-03-01T00:00:00Z", "reason": "密钥泄露"}
        r = client.post(url, headers=world.prosecutor.headers, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "compromised"
        assert client.post(url, headers=world.prosecutor.headers, json=body).status_code == 409
        with env.db.read() as s:
            [event] = s.execute(select(Event).where(Event.type == "key-revocation")
                                ).scalars().all()
        assert event.body["subjectId"] == agent.agent_id
        assert event.body["since"] == "2026-03-01T00:00:00Z"
        assert "密钥泄露" not in str(event.body)

    def test_a_company_revokes_only_its_own_agents(
        self, client: TestClient, world: World, agent: AgentClient
    ) -> None:
        examiners = enroll(client, world, party_id=world.parties[PartyRole.PROCURATORATE])
        r = client.post(f"{world.url}/agents/{examiners.agent_id}/revoke",
                        headers=world.company.headers,
                        json={"kind": "decommissioned", "reason": "x"})
        assert r.status_code == 403
        r = client.post(f"{world.url}/agents/{agent.agent_id}/revoke",
                        headers=world.company.headers,
                        json={"kind": "decommissioned", "reason": "主机报废"})
        assert r.status_code == 200, r.text


class TestMatchingMaterial:
    def test_filter_and_confirm_for_the_agents_own_case(
        self, client: TestClient, world: World, agent: AgentClient, env: LogEnv
    ) -> None:
        key = evidence.examiner_key(world)
        signed = evidence.write_signed(env.settings.data_dir, key, case=world.case_number,
                                       items=evidence.entries(5))
        r = client.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
            "manifest": ("m.jsonl", signed.path.read_bytes()),
            "envelope": ("e.json", json.dumps(signed.envelope).encode())})
        assert r.status_code == 201, r.text
        manifest = r.json()
        scopes = agent.get("/api/v1/agents/scopes").json()["scopes"]
        assert scopes[0]["manifest"] == {"id": manifest["id"], "root": manifest["root"],
                                         "count": 5}
        base = f"/api/v1/agents/manifests/{manifest['id']}"
        filt = agent.get(f"{base}/filter")
        assert filt.status_code == 200
        assert filt.headers["etag"] == f'"{manifest["root"]}"'
        wanted = signed.entries[2].digest
        r = agent.post(f"{base}/confirm", json={"digests": [wanted, "0" * 64]})
        assert r.status_code == 200, r.text
        [hit] = r.json()["hits"]
        assert (hit["digest"], hit["index"]) == (wanted, 2)
        assert agent.get("/api/v1/agents/manifests/999999/filter").status_code == 404


class TestOpenApi:
    def test_agent_paths_declare_the_signature_scheme(self, client: TestClient) -> None:
        paths = client.get("/openapi.json").json()["paths"]
        assert paths["/api/v1/agents/heartbeat"]["post"]["security"] == [{"httpSignature": []}]
        # Statements come from agents (signed requests) and from people (bearer tokens).
        assert paths["/api/v1/attestations"]["post"]["security"] == [
            {"httpSignature": []}, {"bearerToken": []}]
        assert paths["/api/v1/agents/enroll"]["post"]["security"] == []
