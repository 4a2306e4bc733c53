"""Enrollment tokens and ``POST /api/v1/agents/enroll``."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.core import keys
from deletion_audit.core.predicates import KeyRegistrationPredicate
from deletion_audit.models import Agent, EnrollmentToken, Event, PartyRole
from tests.support.agents import BUILD_DIGEST, enroll, enroll_request, issue_token
from tests.support.log import LogEnv
from tests.support.world import World

ENROLL = "/api/v1/agents/enroll"


def _fingerprint(client: TestClient) -> str:
    vkey = client.get("/api/v1/log/key").text.removesuffix("\n")
    return hashlib.sha256(vkey.encode()).hexdigest()[:16]


class TestEnrollmentTokens:
    def test_token_carries_the_log_key_fingerprint_and_only_its_hash_is_kept(
        self, client: TestClient, world: World, env: LogEnv, scope: dict[str, Any]
    ) -> None:
        r = issue_token(client, world, scope_ids=[scope["id"]],
                        party_id=world.parties[PartyRole.RESPONDENT])
        assert r.status_code == 201, r.text
        body = r.json()
        secret, fp = body["token"].rsplit(".", 1)
        assert fp == _fingerprint(client)
        assert body["party_role"] == "respondent"
        assert body["scope_ids"] == [scope["id"]]
        with env.db.read() as s:
            row = s.get_one(EnrollmentToken, body["id"])
            assert row.secret_hash == hashlib.sha256(secret.encode()).digest()
            assert row.expires_at == env.clock.now() + timedelta(hours=24)

    def test_party_defaults_to_the_callers_own(self, client: TestClient, world: World) -> None:
        r = issue_token(client, world, by=world.company)
        assert r.status_code == 201, r.text
        assert r.json()["party_id"] == world.parties[PartyRole.RESPONDENT]

    def test_only_a_prosecutor_names_another_party(
        self, client: TestClient, world: World
    ) -> None:
        r = issue_token(client, world, by=world.company,
                        party_id=world.parties[PartyRole.VENDOR])
        assert r.status_code == 403, r.text

    def test_witness_may_not_and_outsider_sees_nothing(
        self, client: TestClient, world: World
    ) -> None:
        assert issue_token(client, world, by=world.witness).status_code == 403
        assert issue_token(client, world, by=world.outsider).status_code == 404

    def test_parties_that_run_no_agents_get_no_tokens(
        self, client: TestClient, world: World
    ) -> None:
        r = issue_token(client, world, party_id=world.parties[PartyRole.WITNESS_BODY])
        assert r.status_code == 422, r.text

    def test_scopes_must_be_of_the_case(self, client: TestClient, world: World) -> None:
        r = issue_token(client, world, scope_ids=[999_999])
        assert r.status_code == 422, r.text

    def test_lifetime_is_bounded(self, client: TestClient, world: World) -> None:
        assert issue_token(client, world, expires_in_hours=169).status_code == 422
        assert issue_token(client, world, expires_in_hours=0).status_code == 422


class TestEnroll:
    def test_enrolls_binds_and_registers_the_key_publicly(
        self, client: TestClient, world: World, env: LogEnv, scope: dict[str, Any]
    ) -> None:
        agent = enroll(client, world, scope_ids=[scope["id"]])
        body = agent.enrolled
        assert body["agent_id"].startswith("agt_")
        assert len(body["agent_id"]) == 20
        assert body["case_id"] == world.case_id
        assert body["party_role"] == "respondent"
        assert [s["id"] for s in body["scopes"]] == [scope["id"]]
        assert body["scopes"][0]["spec_digest"] == scope["spec_digest"]
        assert body["checkpoint"].startswith(env.ctx.keys.origin)
        with env.db.read() as s:
            row = s.execute(select(Agent).where(Agent.public_id == agent.agent_id)).scalar_one()
            assert row.key_id == keys.key_id(agent.key)
            events = s.execute(select(Event).where(Event.type == "key-registration")
                               ).scalars().all()
        registration = next(e.body for e in events if e.body.get("subjectId") == agent.agent_id)
        # The logged event is a key-registration predicate, readable by any verifier.
        predicate = KeyRegistrationPredicate.model_validate(registration, by_alias=True,
                                                            by_name=False)
        assert predicate.subject_type == "agent"
        assert predicate.scope_ids == [str(scope["id"])]
        assert predicate.role == "respondent"
        assert predicate.build_digest == BUILD_DIGEST
        # Place details are public only as digests.
        assert predicate.host is not None
        assert predicate.host.hostname_sha256 == hashlib.sha256(b"nvr-01").hexdigest()
        assert "nvr-01" not in str(registration)

    def test_a_token_is_used_once(self, client: TestClient, world: World) -> None:
        token = issue_token(client, world).json()["token"]
        first = client.post(ENROLL, json=enroll_request(token, keys.generate()))
        assert first.status_code == 201, first.text
        again = client.post(ENROLL, json=enroll_request(token, keys.generate()))
        assert again.status_code == 401
        assert again.json()["code"] == "token_used"

    def test_an_expired_token_is_refused(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        token = issue_token(client, world, expires_in_hours=1).json()["token"]
        env.clock.advance(timedelta(hours=1))
        r = client.post(ENROLL, json=enroll_request(token, keys.generate()))
        assert r.status_code == 401
        assert r.json()["code"] == "token_expired"

    def test_an_unknown_token_is_refused(self, client: TestClient, world: World) -> None:
        token = f"not-a-real-secret.{_fingerprint(client)}"
        r = client.post(ENROLL, json=enroll_request(token, keys.generate()))
        assert r.status_code == 401
        assert r.json()["code"] == "token_invalid"

    def test_a_token_of_another_log_is_refused(self, client: TestClient, world: World) -> None:
        secret = issue_token(client, world).json()["token"].rsplit(".", 1)[0]
        r = client.post(ENROLL, json=enroll_request(f"{secret}.0123456789abcdef",
                                                   keys.generate()))
        assert r.status_code == 401
        assert r.json()["code"] == "token_invalid"

    def test_a_refused_enrollment_does_not_use_the_token(
        self, client: TestClient, world: World
    ) -> None:
        token = issue_token(client, world).json()["token"]
        bad = {**enroll_request(token, keys.generate()), "public_key": "AAAA"}
        assert client.post(ENROLL, json=bad).status_code == 422
        ok = client.post(ENROLL, json=enroll_request(token, keys.generate()))
        assert ok.status_code == 201, ok.text
