"""``POST /api/v1/attestations``: ingest of scan and deletion statements, in the order
PROTOCOL.md gives, with refusals recorded and answered the same way again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deletion_audit.core import dsse, keys, merkle
from deletion_audit.core.canonical import canonical_json
from deletion_audit.models import Attestation, Challenge, Event, LogLeaf, Refusal
from tests.conftest import T0
from tests.support.agents import AgentClient, declare_scope
from tests.support.log import LogEnv
from tests.support.world import World

BEFORE = T0 - timedelta(minutes=1)


def _revoke(client: TestClient, world: World, agent: AgentClient, **body: Any) -> None:
    r = client.post(f"{world.url}/agents/{agent.agent_id}/revoke",
                    headers=world.prosecutor.headers, json={"reason": "测试", **body})
    assert r.status_code == 200, r.text


def _counts(env: LogEnv) -> tuple[int, int]:
    with env.db.read() as s:
        return (s.execute(select(func.count()).select_from(Attestation)).scalar_one(),
                s.execute(select(func.count()).select_from(Refusal)).scalar_one())


class TestAccepted:
    def test_receipt_envelope_kept_byte_for_byte_and_leaf_logged(
        self, client: TestClient, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=BEFORE))
        r = agent.submit(signed)
        assert r.status_code == 201, r.text
        receipt = r.json()
        assert receipt["statement_id"] == signed.statement_id
        assert receipt["seq"] == 0
        with env.db.read() as s:
            row = s.execute(select(Attestation)).scalar_one()
            assert row.envelope == signed.envelope
            leaf = s.execute(select(LogLeaf).where(
                LogLeaf.leaf_hash == bytes.fromhex(receipt["leaf_hash"]))).scalar_one()
            event = s.execute(select(Event).where(Event.leaf_hash == leaf.leaf_hash)
                              ).scalar_one()
        assert merkle.leaf_hash(leaf.data) == leaf.leaf_hash
        assert event.type == "attestation"
        assert event.body["statementId"] == signed.statement_id
        # Restricted: the public leaf is a commitment, not the event.
        assert signed.statement_id.encode() not in leaf.data
        env.integrate()
        assert client.get(f"/api/v1/log/leaf/{receipt['leaf_hash']}").status_code == 200

    def test_the_same_statement_again_gets_the_same_receipt(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=BEFORE))
        first = agent.submit(signed)
        env.clock.advance(timedelta(hours=1))
        again = agent.submit(signed)
        assert (again.status_code, again.json()) == (201, first.json())
        assert _counts(env) == (1, 0)

    def test_a_deletion_then_a_chained_scan(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        deletion = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                       deleted_at=BEFORE))
        assert agent.submit(deletion).status_code == 201
        scan = agent.sign_statement(agent.scan(seq=1, prev=deletion.statement_id,
                                               scope=scope, finished_at=BEFORE))
        assert agent.submit(scan).status_code == 201
        assert _counts(env) == (2, 0)


class TestRefusals:
    def test_another_statement_at_a_taken_seq_is_a_fork(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        first = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                finished_at=BEFORE))
        assert agent.submit(first).status_code == 201
        fork = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                               scan_id="scan-2", finished_at=BEFORE))
        r = agent.submit(fork)
        assert r.status_code == 409
        assert r.json()["code"] == "fork"
        assert r.json()["held_by"] == first.statement_id
        again = agent.submit(fork)
        assert (again.status_code, again.json()) == (409, r.json())
        with env.db.read() as s:
            refusal = s.execute(select(Refusal)).scalar_one()
            assert (refusal.seq, refusal.code, refusal.statement_id) == (
                0, "fork", fork.statement_id)
            assert refusal.envelope == fork.envelope
            logged = s.execute(select(Event).where(Event.type == "refusal")).scalars().all()
        assert [e.body["statementId"] for e in logged] == [fork.statement_id]

    def test_a_prev_that_is_not_the_statement_before_is_a_fork(
        self, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        first = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                finished_at=BEFORE))
        assert agent.submit(first).status_code == 201
        wrong = agent.sign_statement(agent.scan(seq=1, prev="e" * 64, scope=scope,
                                                scan_id="scan-2", finished_at=BEFORE))
        r = agent.submit(wrong)
        assert (r.status_code, r.json()["code"]) == (409, "fork")

    def test_a_gap_is_allowed(self, agent: AgentClient, scope: dict[str, Any]) -> None:
        later = agent.sign_statement(agent.scan(seq=5, prev="e" * 64, scope=scope,
                                                finished_at=BEFORE))
        assert agent.submit(later).status_code == 201

    def test_unbound_scope_leaves_only_the_refusal(
        self, client: TestClient, world: World, agent: AgentClient, env: LogEnv
    ) -> None:
        other = declare_scope(client, world, "other")
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=other,
                                                 finished_at=BEFORE))
        r = agent.submit(signed)
        assert (r.status_code, r.json()["code"]) == (422, "unbound_scope")
        assert _counts(env) == (0, 1)
        # The refused statement holds its place in the chain.
        again_at_0 = agent.sign_statement(agent.scan(seq=0, prev=None, scope=other,
                                                     scan_id="scan-9", finished_at=BEFORE))
        assert agent.submit(again_at_0).json()["code"] == "fork"

    def test_a_stale_scope_specification_is_refused(
        self, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        stale = {**scope, "spec_digest": "0" * 64}
        r = agent.submit(agent.sign_statement(agent.scan(seq=0, prev=None, scope=stale,
                                                         finished_at=BEFORE)))
        assert (r.status_code, r.json()["code"]) == (422, "stale_scope")
        assert r.json()["spec_digest"] == scope["spec_digest"]

    def test_another_case_or_agent_is_refused(
        self, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        r = agent.submit(agent.sign_statement(agent.scan(
            seq=0, prev=None, scope=scope, finished_at=BEFORE, case_id="999")))
        assert (r.status_code, r.json()["code"]) == (422, "wrong_case")
        r = agent.submit(agent.sign_statement(agent.scan(
            seq=1, prev="e" * 64, scope=scope, finished_at=BEFORE, agent_id="agt_x")))
        assert (r.status_code, r.json()["code"]) == (422, "wrong_agent")

    def test_a_bad_predicate_is_refused(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        payload = canonical_json({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
            "predicateType": "https://deletion-audit.org/attestation/scan/v1",
            "predicate": {"seq": 0, "caseId": str(agent.case_id)}})
        envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, agent.key).to_json()
        r = agent.post("/api/v1/attestations", content=envelope)
        assert (r.status_code, r.json()["code"]) == (422, "bad_predicate")
        assert _counts(env) == (0, 1)

    def test_an_envelope_signed_by_another_key_is_refused_unrecorded(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=BEFORE), key=keys.generate())
        r = agent.submit(signed)
        assert (r.status_code, r.json()["code"]) == (401, "bad_signature")
        r = agent.post("/api/v1/attestations", content=b'{"payload": 1}')
        assert (r.status_code, r.json()["code"]) == (422, "bad_envelope")
        assert _counts(env) == (0, 0)


class TestChallenges:
    def _challenge(self, agent: AgentClient, scope: dict[str, Any]) -> dict[str, Any]:
        r = agent.post("/api/v1/agents/challenges", json={"scope_id": scope["id"]})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def test_parts_of_one_scan_share_the_first_parts_judgment(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = self._challenge(agent, scope)["nonce"]
        part1 = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope, part=1,
                                                last=False, challenge=nonce,
                                                finished_at=BEFORE))
        assert agent.submit(part1).status_code == 201
        env.clock.advance(timedelta(minutes=30))  # past the challenge's expiry
        part2 = agent.sign_statement(agent.scan(seq=1, prev=part1.statement_id, scope=scope,
                                                part=2, challenge=nonce, finished_at=T0))
        assert agent.submit(part2).status_code == 201, "later parts share the judgment"
        with env.db.read() as s:
            row = s.execute(select(Challenge)).scalar_one()
            assert (row.used_by_scan_id, row.judged_at) == ("scan-1", T0)

    def test_a_challenge_answers_one_scan_only(
        self, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        nonce = self._challenge(agent, scope)["nonce"]
        first = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                challenge=nonce, finished_at=BEFORE))
        assert agent.submit(first).status_code == 201
        other = agent.sign_statement(agent.scan(seq=1, prev=first.statement_id, scope=scope,
                                                scan_id="scan-2", challenge=nonce,
                                                finished_at=BEFORE))
        r = agent.submit(other)
        assert (r.status_code, r.json()["code"]) == (422, "reused_challenge")

    def test_an_expired_challenge_is_stale_and_stays_unclaimed(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = self._challenge(agent, scope)["nonce"]
        env.clock.advance(timedelta(minutes=15))
        r = agent.submit(agent.sign_statement(agent.scan(
            seq=0, prev=None, scope=scope, challenge=nonce, finished_at=BEFORE)))
        assert (r.status_code, r.json()["code"]) == (422, "stale_challenge")
        with env.db.read() as s:
            assert s.execute(select(Challenge.used_by_scan_id)).scalar_one() is None

    def test_a_nonce_never_issued_is_refused(
        self, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        r = agent.submit(agent.sign_statement(agent.scan(
            seq=0, prev=None, scope=scope, challenge="f" * 64, finished_at=BEFORE)))
        assert (r.status_code, r.json()["code"]) == (422, "unknown_challenge")


class TestKeyStatus:
    def test_decommissioned_flushes_statements_made_before_within_24_hours(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        made_before = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                      finished_at=BEFORE))
        made_after = agent.sign_statement(agent.scan(
            seq=1, prev=made_before.statement_id, scope=scope, scan_id="scan-2",
            finished_at=T0 + timedelta(minutes=5)))
        _revoke(client, world, agent, kind="decommissioned")
        env.clock.advance(timedelta(hours=23))
        assert agent.submit(made_before).status_code == 201
        r = agent.submit(made_after)
        assert (r.status_code, r.json()["code"]) == (403, "revoked")

    def test_decommissioned_grace_ends_after_24_hours(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=BEFORE))
        _revoke(client, world, agent, kind="decommissioned")
        env.clock.advance(timedelta(hours=24, seconds=1))
        r = agent.submit(signed)
        assert (r.status_code, r.json()["code"]) == (403, "revoked")
        assert _counts(env) == (0, 1)

    def test_compromised_voids_statements_made_since(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
    ) -> None:
        since = T0 - timedelta(minutes=10)
        before = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=since - timedelta(minutes=1)))
        after = agent.sign_statement(agent.scan(seq=1, prev=before.statement_id, scope=scope,
                                                scan_id="scan-2", finished_at=BEFORE))
        _revoke(client, world, agent, kind="compromised",
                since=since.isoformat().replace("+00:00", "Z"))
        assert agent.submit(before).status_code == 201
        r = agent.submit(after)
        assert (r.status_code, r.json()["code"]) == (403, "revoked")
        assert r.json()["key_status"] == "compromised"

    def test_an_earlier_outcome_survives_revocation(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any],
        env: LogEnv,
    ) -> None:
        signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope,
                                                 finished_at=BEFORE))
        first = agent.submit(signed)
        _revoke(client, world, agent, kind="compromised",
                since=(T0 - timedelta(days=1)).isoformat().replace("+00:00", "Z"))
        env.clock.advance(timedelta(days=3))
        again = agent.submit(signed)
        assert (again.status_code, again.json()) == (201, first.json())
