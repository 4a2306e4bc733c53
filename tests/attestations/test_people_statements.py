"""``POST /api/v1/attestations`` with a bearer token: statements signed by people (vendor,
custody v2, deidentify), accepted end to end or refused with a precise status and code and
a refusal record, on both engines."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deletion_audit.core import keys
from deletion_audit.core.predicates import SCAN, SESSION, VENDOR
from deletion_audit.identity import tokens
from deletion_audit.models import (
    Attestation,
    Event,
    LogLeaf,
    PartyRole,
    PersonStatement,
    Refusal,
    User,
)
from tests.conftest import T0
from tests.support.log import LogEnv
from tests.support.statements import (
    Signer,
    custody_obligation,
    data_flow,
    deidentify_obligation,
    sign_payload,
    statement_payload,
)
from tests.support.world import World

BEFORE = T0 - timedelta(minutes=1)


@pytest.fixture
def vendor(client: TestClient, world: World) -> Signer:
    return Signer.register(client, world["vendor-officer"])


@pytest.fixture
def flow(client: TestClient, world: World) -> int:
    return data_flow(client, world)


def _counts(env: LogEnv) -> tuple[int, int]:
    with env.db.read() as s:
        return (s.execute(select(func.count()).select_from(Attestation)).scalar_one(),
                s.execute(select(func.count()).select_from(Refusal)).scalar_one())


def _obligation_state(client: TestClient, world: World, oid: int) -> str:
    r = client.get(f"{world.url}/obligations/{oid}", headers=world.prosecutor.headers)
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


def _refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    body: dict[str, Any] = r.json()
    return body


def _refusal(env: LogEnv, statement_id: str) -> tuple[Refusal, Event]:
    with env.db.read() as s:
        row = s.execute(select(Refusal).where(Refusal.statement_id == statement_id)
                        ).scalar_one()
        event = s.execute(select(Event).where(Event.leaf_hash == row.leaf_hash)).scalar_one()
        s.expunge_all()
    return row, event


class TestVendorStatementAccepted:
    def test_stored_whole_with_its_leaf_and_recorded_for_its_flow(
        self, client: TestClient, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        r = vendor.submit(signed)
        assert r.status_code == 201, r.text
        receipt = r.json()
        assert (receipt["statement_id"], receipt["seq"]) == (signed.statement_id, None)
        with env.db.read() as s:
            row = s.execute(select(Attestation)).scalar_one()
            assert row.envelope == signed.envelope
            assert (row.agent_id, row.user_id, row.case_id, row.predicate_type) == (
                None, world["vendor-officer"].user_id, world.case_id, VENDOR)
            recorded = s.execute(select(PersonStatement)).scalar_one()
            assert (recorded.data_flow_id, recorded.party_id, recorded.outcome,
                    recorded.key_id) == (flow, world.parties[PartyRole.VENDOR], "deleted",
                                         vendor.key_id)
            leaf = s.execute(select(LogLeaf).where(
                LogLeaf.leaf_hash == bytes.fromhex(receipt["leaf_hash"]))).scalar_one()
            event = s.execute(select(Event).where(Event.leaf_hash == leaf.leaf_hash)
                              ).scalar_one()
        assert event.type == "attestation"
        # What a replay of the log needs to record the statement again.
        assert {k: event.body[k] for k in ("statementId", "userId", "keyId", "partyId",
                                           "dataFlowId", "obligationId", "envelopeSha256")} == {
            "statementId": signed.statement_id, "userId": world["vendor-officer"].user_id,
            "keyId": vendor.key_id, "partyId": world.parties[PartyRole.VENDOR],
            "dataFlowId": flow, "obligationId": None,
            "envelopeSha256": hashlib.sha256(signed.envelope).hexdigest()}
        # Restricted: the public leaf is a commitment, not the event.
        assert signed.statement_id.encode() not in leaf.data

    def test_the_same_statement_again_gets_the_same_receipt(
        self, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        first = vendor.submit(signed)
        env.clock.advance(timedelta(hours=1))
        again = vendor.submit(signed)
        assert (again.status_code, again.json()) == (201, first.json())
        assert _counts(env) == (1, 0)

    def test_another_person_cannot_resubmit_it(
        self, client: TestClient, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        assert vendor.submit(signed).status_code == 201
        other = Signer.register(client, world.company)
        _refused(other.submit(signed), 422, "wrong_submitter")
        assert _counts(env) == (1, 0)


class TestCustodyAndDeidentify:
    def test_destroyed_alone_does_not_discharge_the_custody_obligation(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        """Regression: a destroyed statement once discharged custody at once; it now also
        needs clean scans of every other scope after it (tests/verdicts/test_custody.py),
        and this case declares none."""
        oid = custody_obligation(client, world)
        custodian = Signer.register(client, world["custodian-officer"])
        sealed = custodian.submit(custodian.sign(custodian.custody(
            world, obligation_id=oid, action="sealed", occurred_at=BEFORE)))
        assert sealed.status_code == 201, sealed.text
        assert _obligation_state(client, world, oid) == "in_force"
        destroyed = custodian.submit(custodian.sign(custodian.custody(
            world, obligation_id=oid, occurred_at=T0)))
        assert destroyed.status_code == 201, destroyed.text
        assert _obligation_state(client, world, oid) == "in_force"
        with env.db.read() as s:
            assert [r.outcome for r in s.execute(select(PersonStatement).order_by(
                PersonStatement.attestation_id)).scalars()] == ["sealed", "destroyed"]

    def test_a_failed_check_breaches_a_pass_is_recorded_for_the_prosecutor(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        oid = deidentify_obligation(client, world)
        examiner = Signer.register(client, world.examiner)
        passed = examiner.submit(examiner.sign(examiner.deidentify(world, checked_at=BEFORE)))
        assert passed.status_code == 201, passed.text
        assert _obligation_state(client, world, oid) == "in_force"
        failed = examiner.submit(examiner.sign(examiner.deidentify(
            world, checked_at=T0, result="fail")))
        assert failed.status_code == 201, failed.text
        assert _obligation_state(client, world, oid) == "breached"

    def test_the_prosecutor_discharges_after_a_pass_a_later_fail_breaches(
        self, client: TestClient, world: World
    ) -> None:
        oid = deidentify_obligation(client, world)
        examiner = Signer.register(client, world.examiner)
        assert examiner.submit(examiner.sign(examiner.deidentify(
            world, checked_at=BEFORE))).status_code == 201
        r = client.post(f"{world.url}/obligations/{oid}/state",
                        headers=world.prosecutor.headers,
                        json={"state": "discharged", "reason": "检验合格"})
        assert r.status_code == 200, r.text
        assert examiner.submit(examiner.sign(examiner.deidentify(
            world, checked_at=T0, result="fail"))).status_code == 201
        assert _obligation_state(client, world, oid) == "breached"

    def test_the_lab_examiner_may_check_too(self, client: TestClient, world: World) -> None:
        deidentify_obligation(client, world)
        lab = Signer.register(client, world["lab-examiner"])
        r = lab.submit(lab.sign(lab.deidentify(world, checked_at=BEFORE)))
        assert r.status_code == 201, r.text

    def test_a_pass_must_check_every_rule_of_the_obligation(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        deidentify_obligation(client, world)
        examiner = Signer.register(client, world.examiner)
        signed = examiner.sign(examiner.deidentify(world, checked_at=BEFORE, rules=["mask-name"]))
        body = _refused(examiner.submit(signed), 422, "incomplete_rules")
        assert body["missing"] == ["mask-id-7-14"]

    def test_a_dataset_no_obligation_names(self, client: TestClient, world: World) -> None:
        deidentify_obligation(client, world)
        examiner = Signer.register(client, world.examiner)
        r = examiner.submit(examiner.sign(examiner.deidentify(
            world, checked_at=BEFORE, dataset="另一名单")))
        _refused(r, 422, "unknown_obligation")

    def test_custody_of_another_medium(self, client: TestClient, world: World) -> None:
        oid = custody_obligation(client, world)
        custodian = Signer.register(client, world["custodian-officer"])
        r = custodian.submit(custodian.sign(custodian.custody(
            world, obligation_id=oid, occurred_at=BEFORE, medium="disk-2")))
        _refused(r, 422, "wrong_medium")


class TestKeyRefusals:
    def test_a_key_never_registered(self, world: World, env: LogEnv, vendor: Signer,
                                    flow: int) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE),
                             key=keys.generate())
        _refused(vendor.submit(signed), 401, "unknown_key")
        row, event = _refusal(env, signed.statement_id)
        assert (row.user_id, row.agent_id, row.case_id, row.code, row.status) == (
            world["vendor-officer"].user_id, None, world.case_id, "unknown_key", 401)
        assert row.envelope == signed.envelope
        assert event.type == "refusal"
        assert event.body["statementId"] == signed.statement_id
        assert _counts(env) == (0, 1)

    def test_a_revoked_key(self, client: TestClient, world: World, env: LogEnv,
                           vendor: Signer, flow: int) -> None:
        r = client.delete(f"/api/v1/users/me/keys/{vendor.key_id}",
                          headers=vendor.person.headers, params={"reason": "compromised"})
        assert r.status_code == 200, r.text
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        body = _refused(vendor.submit(signed), 403, "key_revoked")
        assert body["key_id"] == vendor.key_id
        assert _counts(env) == (0, 1)

    def test_a_tampered_payload(self, world: World, env: LogEnv, vendor: Signer,
                                flow: int) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        envelope = json.loads(signed.envelope)
        payload = base64.b64decode(envelope["payload"]).replace(b'"deleted"', b'"not-received"')
        envelope["payload"] = base64.b64encode(payload).decode()
        r = vendor.submit(json.dumps(envelope).encode())
        _refused(r, 400, "invalid_signature")
        row, _ = _refusal(env, hashlib.sha256(payload).hexdigest())
        assert row.code == "invalid_signature"
        assert _counts(env) == (0, 1)

    def test_a_key_registered_to_someone_else(
        self, client: TestClient, world: World, vendor: Signer, flow: int
    ) -> None:
        colleague = Signer.register(client, world.company)
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE),
                             key=colleague.key)
        _refused(vendor.submit(signed), 403, "wrong_key")

    def test_a_refusal_is_answered_the_same_way_again(
        self, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE),
                             key=keys.generate())
        first = vendor.submit(signed)
        again = vendor.submit(signed)
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert _counts(env) == (0, 1)


class TestPredicateRefusals:
    def test_an_agents_predicate_is_unknown_here(self, world: World, env: LogEnv,
                                                 vendor: Signer) -> None:
        signed = sign_payload(statement_payload(SCAN, {"caseId": str(world.case_id)}),
                              vendor.key)
        body = _refused(vendor.submit(signed), 422, "unknown_predicate")
        assert VENDOR in body["accepted"]
        row, _ = _refusal(env, signed.statement_id)
        assert row.case_id == world.case_id

    def test_a_foreign_predicate_type(self, vendor: Signer) -> None:
        signed = sign_payload(statement_payload("https://slsa.dev/provenance/v1", {}),
                              vendor.key)
        _refused(vendor.submit(signed), 422, "unknown_predicate")

    def test_a_session_record_goes_to_the_session_endpoints(
        self, world: World, vendor: Signer
    ) -> None:
        signed = sign_payload(statement_payload(SESSION, {"caseId": str(world.case_id)}),
                              vendor.key)
        body = _refused(vendor.submit(signed), 422, "session_record")
        assert "/signatures" in body["message"]

    def test_a_predicate_that_breaks_its_schema(self, world: World, vendor: Signer) -> None:
        signed = sign_payload(statement_payload(VENDOR, {
            "caseId": str(world.case_id), "partyId": "1", "flowId": "1", "status": "gone",
            "statedAt": "2026-03-02T01:00:00Z"}), vendor.key)
        body = _refused(vendor.submit(signed), 422, "bad_predicate")
        assert "status" in body["message"]

    def test_not_a_dsse_envelope_is_refused_unrecorded(self, env: LogEnv,
                                                       vendor: Signer) -> None:
        _refused(vendor.submit(b'{"payload": 1}'), 422, "bad_envelope")
        assert _counts(env) == (0, 0)


class TestCaseRefusals:
    def test_another_case_answers_as_one_that_does_not_exist(
        self, client: TestClient, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        r = client.post("/api/v1/cases", headers=world.prosecutor.headers,
                        json={"case_number": "(2025)沪0118民初7号", "title": "另一案件"})
        assert r.status_code == 201, r.text
        for case_id in (r.json()["id"], 999_999):
            signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE,
                                               case_id=case_id))
            _refused(vendor.submit(signed), 404, "wrong_case")
            row, event = _refusal(env, signed.statement_id)
            # Never attributed to a case its submitter cannot see.
            assert (row.case_id, event.body["caseId"]) == (None, None)

    def test_a_role_the_table_does_not_allow(
        self, client: TestClient, world: World, env: LogEnv, flow: int
    ) -> None:
        officer = Signer.register(client, world.company)
        signed = officer.sign(officer.vendor(world, flow_id=flow, stated_at=BEFORE))
        body = _refused(officer.submit(signed), 403, "not_permitted")
        assert "vendor" in body["message"]
        row, _ = _refusal(env, signed.statement_id)
        assert row.case_id == world.case_id

    def test_a_flow_declared_without_this_vendor(
        self, client: TestClient, world: World, vendor: Signer
    ) -> None:
        own = data_flow(client, world, kind="cloud_upload", vendor_party_id=None)
        r = vendor.submit(vendor.sign(vendor.vendor(world, flow_id=own, stated_at=BEFORE)))
        _refused(r, 422, "wrong_party")

    def test_a_party_that_is_not_the_signers(self, world: World, vendor: Signer,
                                             flow: int) -> None:
        r = vendor.submit(vendor.sign(vendor.vendor(
            world, flow_id=flow, stated_at=BEFORE, party_id=world.parties[PartyRole.RESPONDENT])))
        _refused(r, 422, "wrong_party")

    def test_an_unknown_flow(self, world: World, vendor: Signer) -> None:
        r = vendor.submit(vendor.sign(vendor.vendor(world, flow_id=999, stated_at=BEFORE)))
        _refused(r, 422, "unknown_flow")

    def test_a_statement_dated_in_the_future(self, world: World, vendor: Signer,
                                             flow: int) -> None:
        r = vendor.submit(vendor.sign(vendor.vendor(
            world, flow_id=flow, stated_at=T0 + timedelta(hours=1))))
        _refused(r, 422, "stated_in_future")


class TestTransport:
    def test_a_body_over_2_mib_is_refused_before_it_is_read(
        self, world: World, env: LogEnv, vendor: Signer
    ) -> None:
        r = vendor.submit(b"x" * ((2 << 20) + 1))
        _refused(r, 413, "payload_too_large")
        assert _counts(env) == (0, 0)

    def test_no_credentials(self, client: TestClient, world: World, vendor: Signer,
                            flow: int) -> None:
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        r = client.post("/api/v1/attestations", content=signed.envelope)
        _refused(r, 401, "unauthorized")
        r = client.post("/api/v1/attestations", content=signed.envelope,
                        headers={"Authorization": "Bearer dapat_nope"})
        _refused(r, 401, "unauthorized")

    def test_a_read_only_token_writes_nothing(
        self, client: TestClient, world: World, env: LogEnv, vendor: Signer, flow: int
    ) -> None:
        with env.db.write() as s:
            user = s.get_one(User, world["vendor-officer"].user_id)
            secret = tokens.create_token(s, user=user, read_only=True, actor="test",
                                         now=env.clock.now()).secret
        signed = vendor.sign(vendor.vendor(world, flow_id=flow, stated_at=BEFORE))
        r = client.post("/api/v1/attestations", content=signed.envelope,
                        headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 403
        assert _counts(env) == (0, 0)
