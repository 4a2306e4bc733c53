"""``/api/v1/cases/{id}/recipients`` and ``/api/v1/cases/{id}/judgments`` over HTTP."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi.testclient import TestClient

from deletion_audit.core import dsse
from deletion_audit.scheduling.tick import tick
from tests.conftest import T0
from tests.support.log import LogEnv
from tests.support.receivers import SECRET
from tests.support.world import World, add_agent


class TestRecipients:
    def test_added_and_listed_without_the_secret(self, client: TestClient,
                                                 world: World) -> None:
        r = client.post(f"{world.url}/recipients", headers=world.prosecutor.headers, json={
            "role": "prosecutor", "channel": "webhook", "address": "https://hooks.example.com/da",
            "secret": SECRET, "step": 1, "after_hours": 48})
        assert r.status_code == 201, r.text
        listed = client.get(f"{world.url}/recipients", headers=world.prosecutor.headers)
        [row] = listed.json()["items"]
        assert (row["address"], row["step"], row["after_hours"]) == (
            "https://hooks.example.com/da", 1, 48)
        assert "secret" not in row

    def test_loopback_webhooks_refused_outside_development(self, client: TestClient,
                                                           world: World) -> None:
        r = client.post(f"{world.url}/recipients", headers=world.prosecutor.headers, json={
            "role": "prosecutor", "channel": "webhook", "address": "https://127.0.0.1:9/x",
            "secret": SECRET})
        assert r.status_code == 422
        assert r.json()["code"] == "destination_refused"

    def test_a_later_step_needs_its_delay(self, client: TestClient, world: World) -> None:
        r = client.post(f"{world.url}/recipients", headers=world.prosecutor.headers, json={
            "role": "prosecutor", "channel": "email", "address": "li@procuratorate.example",
            "step": 2})
        assert r.status_code == 422
        assert "after_hours" in r.json()["message"]


class TestJudgments:
    def test_listed_with_their_signed_statements(self, env: LogEnv, client: TestClient,
                                                 world: World) -> None:
        public_id = add_agent(world)
        tick(env.db, service_key=env.ctx.keys.service_key, now=T0 + timedelta(hours=1))
        r = client.get(f"{world.url}/judgments", headers=world.prosecutor.headers)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert sorted(i["finding"] for i in items) == ["dark", "late"]
        assert {i["agent_id"] for i in items} == {public_id}
        envelope = dsse.from_json(base64.b64decode(items[0]["envelope"]))
        dsse.verify(envelope, [env.ctx.keys.service_key.public_key()])
