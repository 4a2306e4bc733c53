"""Deletions the server asks for: a request on a scope is a ``delete`` task for each agent
bound to it until that agent has scanned the scope clean, or the request expires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.models import Event
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World

TASKS = "/api/v1/agents/tasks"


def _request(client: TestClient, world: World, scope: dict[str, Any], **body: Any) -> Any:
    r = client.post(f"{world.url}/deletion-requests", headers=world.prosecutor.headers,
                    json={"scope_id": scope["id"], "reason": "检察建议第3项", **body})
    assert r.status_code == 201, r.text
    return r.json()


def _deletes(agent: AgentClient) -> list[tuple[str, int]]:
    r = agent.get(TASKS)
    assert r.status_code == 200, r.text
    return [(t["id"], t["scope_id"]) for t in r.json()["tasks"] if t["kind"] == "delete"]


def _clean_scan(agent: AgentClient, scope: dict[str, Any], env: LogEnv, *, seq: int,
                prev: str | None, present: list[str] | None = None) -> str:
    signed = agent.sign_statement(agent.scan(seq=seq, prev=prev, scope=scope,
                                             scan_id=f"scan-{seq}", present=present,
                                             finished_at=env.clock.now()))
    r = agent.submit(signed)
    assert r.status_code == 201, r.text
    return signed.statement_id


class TestDeletionRequests:
    def test_a_request_is_a_task_for_every_bound_agent_and_logged(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        second = enroll(client, world, scope_ids=[scope["id"]])
        request = _request(client, world, scope)
        assert request["scope_id"] == scope["id"]
        assert sorted(a["agent_id"] for a in request["agents"]) == sorted(
            [agent.agent_id, second.agent_id])
        assert {a["state"] for a in request["agents"]} == {"open"}
        task = (f"delete-{request['id']}", scope["id"])
        assert _deletes(agent) == [task]
        assert _deletes(second) == [task]
        beat = agent.post("/api/v1/agents/heartbeat", json={"outbox": 0, "dead_letters": 0})
        assert beat.json()["tasks"] == 1
        with env.db.read() as s:
            logged = s.execute(select(Event).where(Event.type == "deletion-request")
                               ).scalars().all()
        assert [(e.body["requestId"], e.body["scopeId"], e.body["reason"]) for e in logged] == [
            (request["id"], scope["id"], "检察建议第3项")]
        assert request["leaf_hash"] == logged[0].leaf_hash.hex()

    def test_done_for_an_agent_once_it_scanned_clean_since(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        # A clean scan from before the request does not answer it.
        first = _clean_scan(agent, scope, env, seq=0, prev=None)
        env.clock.advance(timedelta(minutes=1))
        request = _request(client, world, scope)
        assert _deletes(agent) == [(f"delete-{request['id']}", scope["id"])]
        # A scan that still finds an item does not either.
        env.clock.advance(timedelta(minutes=1))
        found = _clean_scan(agent, scope, env, seq=1, prev=first, present=["a" * 64])
        assert _deletes(agent) != []
        env.clock.advance(timedelta(minutes=1))
        _clean_scan(agent, scope, env, seq=2, prev=found)
        assert _deletes(agent) == []
        r = client.get(f"{world.url}/deletion-requests", headers=world.company.headers)
        assert r.status_code == 200, r.text
        [row] = r.json()["items"]
        assert row["agents"] == [{"agent_id": agent.agent_id, "state": "done"}]

    def test_expired_requests_are_no_longer_tasks(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        _request(client, world, scope, ttl_hours=1)
        env.clock.advance(timedelta(hours=1))
        assert _deletes(agent) == []
        r = client.get(f"{world.url}/deletion-requests", headers=world.prosecutor.headers)
        assert [a["state"] for a in r.json()["items"][0]["agents"]] == ["expired"]

    def test_refusals(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        url = f"{world.url}/deletion-requests"
        witness = client.post(url, headers=world.witness.headers,
                              json={"scope_id": scope["id"]})
        assert witness.status_code == 403
        outsider = client.post(url, headers=world.outsider.headers,
                               json={"scope_id": scope["id"]})
        assert outsider.status_code in (403, 404)
        missing = client.post(url, headers=world.prosecutor.headers, json={"scope_id": 9999})
        assert missing.status_code == 404
        unbound = declare_scope(client, world, "unbound")
        r = client.post(url, headers=world.prosecutor.headers, json={"scope_id": unbound["id"]})
        assert r.status_code == 409
        assert "bind one first" in r.json()["message"]
        too_long = client.post(url, headers=world.prosecutor.headers,
                               json={"scope_id": scope["id"], "reason": "x" * 2001})
        assert too_long.status_code == 422
        # The company may ask its own agents too.
        own = client.post(url, headers=world.company.headers, json={"scope_id": scope["id"]})
        assert own.status_code == 201, own.text
