"""On-site sessions over HTTP, on both engines: opening, the examiner's session agent, the
record, co-signatures and their refusals, closure and the verdict's ``witnessed`` grade."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import select

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode
from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.predicates import SessionPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.models import Event, OutboxMessage, PartyRole, Recipient
from tests.support.agents import AgentClient
from tests.support.sessions import OnSite
from tests.support.statements import Signer
from tests.verdicts.conftest import Case


def _session_events(case: Case) -> list[dict[str, object]]:
    with case.env.db.read() as session:
        return [e.body for e in session.execute(
            select(Event).where(Event.type == "session").order_by(Event.id)).scalars()]


def _found_session(case: Case, onsite: OnSite, present: list[str]
                   ) -> tuple[int, AgentClient]:
    """A session whose examiner's agent and the company's agent both scanned."""
    sid = onsite.open()
    examiner_agent = onsite.enroll_examiner_agent(sid)
    onsite.challenge(sid)
    onsite.scan(case.agent)
    onsite.scan(examiner_agent, present=present)
    return sid, examiner_agent


class TestOpening:
    def test_open_records_participants_notice_and_rule(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        body = onsite.get(sid)
        assert (body["state"], body["sign_off"], body["scope_ids"]) == (
            "open", "prosecutor+2-witnesses", [case.scope["id"]])
        roles = sorted(p["role"] for p in body["participants"])
        assert roles == ["company_officer", "examiner", "prosecutor", "witness", "witness"]
        assert all(p["notice_days"] == 3.0 and not p["short_notice"]
                   for p in body["participants"])
        [opened] = _session_events(case)
        assert (opened["action"], opened["sessionId"], opened["signOff"]) == (
            "opened", sid, "prosecutor+2-witnesses")

    def test_the_notice_is_queued_for_the_participants_roles(self, case: Case) -> None:
        for role, address in (("witness", "deputy@example.org"),
                              ("examiner", "lab@example.org")):
            r = case.client.post(f"{case.world.url}/recipients",
                                 headers=case.world.prosecutor.headers,
                                 json={"role": role, "channel": "email", "address": address})
            assert r.status_code == 201, r.text
        onsite = OnSite.start(case, names=("prosecutor", "witness"))
        sid = onsite.open(names=("prosecutor", "witness"), rule="all")
        with case.env.db.read() as session:
            queued = session.execute(select(OutboxMessage)).scalars().all()
            addresses = {session.get_one(Recipient, m.recipient_id).address for m in queued}
        assert addresses == {"deputy@example.org"}
        [message] = queued
        assert message.payload["data"]["sessionId"] == sid
        assert "现场勘验" in message.subject
        assert f"session sign {case.world.case_id}/{sid}" in message.body

    def test_short_notice_is_shown(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open(notice=timedelta(hours=20))
        assert all(p["short_notice"] for p in onsite.get(sid)["participants"])

    def test_refusals_when_opening(self, case: Case) -> None:
        onsite = OnSite.start(case, names=("prosecutor", "witness"))
        world, url = case.world, onsite.url()
        base = {"place": "机房", "planned_at": "2026-03-05T01:30:00Z",
                "scope_ids": [case.scope["id"]], "sign_off": "all"}

        def post(who: str, **changes: object) -> tuple[int, str]:
            r = case.client.post(url, headers=world[who].headers, json={
                **base, "participants": [{"user_id": world["prosecutor"].user_id}], **changes})
            return r.status_code, r.text

        assert post("officer")[0] == 403
        assert post("outsider")[0] == 404
        status, text = post("prosecutor", participants=[{"user_id": world["regulator"].user_id}])
        assert status == 422
        assert "no registered key" in text
        status, text = post("prosecutor", participants=[{"user_id": world["outsider"].user_id}])
        assert status == 422
        assert "not a member" in text
        status, text = post("prosecutor", sign_off="prosecutor+2-witnesses")
        assert status == 422
        assert "needs 2 witness" in text
        status, text = post("prosecutor", sign_off="the-boss")
        assert status == 422
        assert "cannot read sign-off rule" in text
        status, text = post("prosecutor", scope_ids=[999_999])
        assert status == 422
        assert "no scope" in text
        assert _session_events(case) == []


class TestSessionAgent:
    def test_token_scoped_to_the_session_binds_its_scopes(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        agent = onsite.enroll_examiner_agent(sid)
        with case.env.db.read() as session:
            registration = session.execute(select(Event).where(
                Event.type == "key-registration").order_by(Event.id.desc())).scalars().first()
        assert registration is not None
        assert (registration.body["subjectId"], registration.body["sessionId"],
                registration.body["role"], registration.body["scopeIds"]) == (
            agent.agent_id, str(sid), "procuratorate", [str(case.scope["id"])])

    def test_a_company_party_gets_no_session_token(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        r = case.client.post(f"{onsite.url(sid)}/enrollment-tokens",
                             headers=onsite.headers("prosecutor"),
                             json={"party_id": case.world.parties[PartyRole.RESPONDENT]})
        assert r.status_code == 422
        assert "examiner's" in r.json()["message"]

    def test_the_case_token_endpoint_checks_a_session_it_names(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        other = case.client.post(f"{case.world.url}/scopes", headers=case.world.company.headers,
                                 json={"name": "backup", "kind": "directory",
                                       "spec": {"root": "/srv/backup"}}).json()["id"]
        url = f"{case.world.url}/enrollment-tokens"
        headers = onsite.headers("examiner")
        r = case.client.post(url, headers=headers, json={"session_id": 999_999})
        assert r.status_code == 422
        assert "no session 999999" in r.json()["message"]
        r = case.client.post(url, headers=headers, json={"session_id": sid,
                                                         "scope_ids": [other]})
        assert r.status_code == 422
        assert "not inspected by session" in r.json()["message"]
        r = case.client.post(url, headers=headers, json={"session_id": sid,
                                                         "scope_ids": [case.scope["id"]]})
        assert r.status_code == 201, r.text

    def test_challenges_need_the_session_agent(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        r = case.client.post(f"{onsite.url(sid)}/challenges", headers=onsite.headers("examiner"),
                             json={})
        assert r.status_code == 409
        assert "session token" in r.json()["message"]

    def test_challenges_go_to_the_session_agent_and_the_company_agent_only(
        self, case: Case
    ) -> None:
        onsite = OnSite.start(case)
        first = onsite.open()
        earlier = onsite.enroll_examiner_agent(first)
        sid = onsite.open()
        agent = onsite.enroll_examiner_agent(sid)
        issued = onsite.challenge(sid)
        assert {c["agent_id"] for c in issued} == {agent.agent_id, case.agent.agent_id}
        assert earlier.agent_id not in {c["agent_id"] for c in issued}
        assert {c["origin"] for c in issued} == {"session"}

    def test_results_compare_the_examiner_with_the_company(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, agent = _found_session(case, onsite, case.digests[:3])
        r = case.client.get(f"{onsite.url(sid)}/results", headers=onsite.headers("witness"))
        assert r.status_code == 200, r.text
        [scope] = r.json()["scopes"]
        assert (scope["items_present"], scope["found_by_examiner_only"],
                scope["found_by_company_only"]) == (3, 3, 0)
        by = {s["attested_by"]: s for s in scope["scans"]}
        assert (by["examiner"]["agent_id"], by["examiner"]["items_present"]) == (
            agent.agent_id, 3)
        assert by["examiner"]["agent_build_digest"] == "b" * 64
        assert (by["company"]["items_present"], by["company"]["coverage"]) == (0, "complete")


class TestRecord:
    def test_the_record_is_the_signed_payload_with_both_summaries(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, case.digests[:3])
        built = onsite.record(sid)
        payload = b64decode(built["payload"])
        assert built["digest"] == hashlib.sha256(payload).hexdigest()
        predicate = expect_predicate(parse_statement(payload), SessionPredicate)
        assert (predicate.items_present, predicate.outcome) == (3, "findings")
        assert predicate.summary.zh == built["summary_zh"]
        assert "发现证据清单所列数据3项仍然存在" in built["summary_zh"]
        assert "其中3项是公司自己的检测程序没有报告的" in built["summary_zh"]
        assert "3 item(s) of the evidence manifest are still present" in built["summary_en"]
        assert predicate.environment.host_matches_declared is True
        assert predicate.environment.hostname_sha256 == hashlib.sha256(b"nvr-01").hexdigest()
        assert sorted(p.role for p in predicate.participants)[0] == "company_officer"
        # The public record holds counts and a commitment: no item digest.
        assert not any(d.encode() in payload for d in case.digests)

    def test_the_court_attachment_opens_the_commitment(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, case.digests[:3])
        built = onsite.record(sid)
        predicate = expect_predicate(parse_statement(b64decode(built["payload"])),
                                     SessionPredicate)
        r = case.client.get(f"{onsite.url(sid)}/items", headers=onsite.headers("prosecutor"))
        assert r.status_code == 200, r.text
        attachment = r.json()
        opened = hashlib.sha256(bytes.fromhex(attachment["salt"])
                                + canonical_json(attachment["lists"])).hexdigest()
        assert opened == predicate.items_commitment
        found = {d for s in attachment["lists"]["scopes"] for scan in s["scans"]
                 for d in scan["present"]}
        assert found == set(case.digests[:3])
        assert case.client.get(f"{onsite.url(sid)}/items",
                               headers=onsite.headers("witness")).status_code == 403

    def test_a_host_other_than_the_declared_one_is_said_plainly(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        built = onsite.record(sid, hostname="spare-laptop")
        assert "不一致" in built["summary_zh"]
        assert "does NOT match" in built["summary_en"]

    def test_no_record_without_the_examiners_scan(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open()
        onsite.enroll_examiner_agent(sid)
        onsite.challenge(sid)
        onsite.scan(case.agent)
        r = case.client.post(f"{onsite.url(sid)}/record", headers=onsite.headers("examiner"),
                             json={"environment": {}})
        assert r.status_code == 409
        assert "examiner's agent" in r.json()["message"]


class TestCoSigning:
    def test_signed_by_the_rule_it_closes_with_findings(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, case.digests[:3])
        onsite.record(sid)
        assert onsite.sign(sid, "prosecutor")["state"] == "recorded"
        assert onsite.sign(sid, "witness")["state"] == "recorded"
        closed = onsite.sign(sid, "regulator")
        assert (closed["state"], closed["outcome"]) == ("closed", "findings")
        body = onsite.get(sid)
        envelope = dsse.Envelope.from_json(body["envelope"])
        trusted = [onsite.signers[n].key.public_key()
                   for n in ("prosecutor", "witness", "regulator")]
        verified = dsse.verify(envelope, trusted, threshold=3)
        assert verified.payload == b64decode(onsite.fetch_record(sid)["payload"])
        actions = [e["action"] for e in _session_events(case)]
        assert actions == ["opened", "token-issued", "challenged", "recorded", "signed",
                           "signed", "signed", "closed"]

    def test_a_non_participant_is_refused(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        onsite.record(sid)
        outsider = OnSite.start(case, names=("vendor-officer",))
        r = onsite.post_signature(sid, "vendor-officer",
                                  outsider.signature(sid, "vendor-officer"))
        assert (r.status_code, r.json()["code"]) == (403, "not_participant")
        r = onsite.post_signature(sid, "outsider", onsite.signature(sid, "prosecutor"))
        assert r.status_code == 404

    def test_a_second_signature_by_the_same_key_is_refused(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        onsite.record(sid)
        body = onsite.signature(sid, "prosecutor")
        assert onsite.post_signature(sid, "prosecutor", body).status_code == 201
        r = onsite.post_signature(sid, "prosecutor", body)
        assert (r.status_code, r.json()["code"]) == (409, "duplicate_signature")
        second = keys.generate()
        Signer.register(case.client, case.world["prosecutor"], key=second)
        r = onsite.post_signature(sid, "prosecutor", onsite.signature(sid, "prosecutor",
                                                                      key=second))
        assert (r.status_code, r.json()["code"]) == (409, "already_signed")

    def test_a_signature_over_a_changed_record_is_refused(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, case.digests[:3])
        record = onsite.record(sid)
        onsite.sign(sid, "prosecutor")
        statement = json.loads(b64decode(record["payload"]))
        statement["predicate"]["summary"]["zh"] = "结果：没有发现证据清单所列的数据。"
        changed = canonical_json(statement)
        r = onsite.post_signature(sid, "witness", onsite.signature(sid, "witness",
                                                                   payload=changed))
        assert (r.status_code, r.json()["code"]) == (409, "record_changed")
        body = onsite.signature(sid, "witness", payload=changed)
        del body["payload_sha256"]
        r = onsite.post_signature(sid, "witness", body)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_signature")
        # Once signed, the record cannot be rebuilt under the signers' feet.
        r = case.client.post(f"{onsite.url(sid)}/record", headers=onsite.headers("examiner"),
                             json={"environment": {}, "remarks": "改"})
        assert r.status_code == 409

    def test_signing_after_closure_is_refused(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        onsite.record(sid)
        for name in ("prosecutor", "witness", "regulator"):
            onsite.sign(sid, name)
        assert onsite.get(sid)["outcome"] == "clean"
        r = onsite.post_signature(sid, "examiner", onsite.signature(sid, "examiner"))
        assert (r.status_code, r.json()["code"]) == (409, "session_closed")

    def test_a_key_of_someone_else_is_refused(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        onsite.record(sid)
        r = onsite.post_signature(sid, "witness", onsite.signature(
            sid, "witness", key=onsite.signers["regulator"].key))
        assert (r.status_code, r.json()["code"]) == (403, "unknown_key")

    def test_a_participant_refuses_with_reasons(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid, _ = _found_session(case, onsite, [])
        onsite.record(sid)
        r = case.client.post(f"{onsite.url(sid)}/refusals", headers=onsite.headers("witness"),
                             json={"reason": "未看到机器铭牌"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["state"] == "refused"
        [mine] = [p for p in body["participants"] if p["user_id"] == case.world["witness"].user_id]
        assert mine["refusal_reason"] == "未看到机器铭牌"
        r = onsite.post_signature(sid, "prosecutor", onsite.signature(sid, "prosecutor"))
        assert (r.status_code, r.json()["code"]) == (409, "session_closed")
        assert _session_events(case)[-1]["action"] == "refused"


class TestVerdict:
    def test_findings_then_a_clean_signed_session_make_the_scope_witnessed(
        self, case: Case
    ) -> None:
        onsite = OnSite.start(case)
        sid, agent = _found_session(case, onsite, case.digests[:3])
        onsite.record(sid)
        for name in ("prosecutor", "witness", "regulator"):
            onsite.sign(sid, name)
        verdict = case.verdict()
        assert verdict["outcome"] == "not_verified"
        [scope] = verdict["report"]["scopes"]
        assert scope["latest_challenged_scan"]["present"] == 3
        assert scope["latest_challenged_scan"]["grade"] == "witnessed"
        case.delete(case.digests[:3], minutes=1)
        second = onsite.open()
        agent = onsite.enroll_examiner_agent(second)
        onsite.challenge(second)
        onsite.scan(case.agent, minutes=2)
        onsite.scan(agent, minutes=2)
        onsite.record(second)
        onsite.sign(second, "prosecutor")
        onsite.sign(second, "witness")
        before = case.verdict()
        assert before["report"]["scopes"][0]["grade"] == "examiner"
        assert onsite.sign(second, "regulator")["outcome"] == "clean"
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        [scope] = verdict["report"]["scopes"]
        assert (scope["grade"], scope["covered"]) == ("witnessed", True)

    def test_an_unwitnessed_session_grades_examiner(self, case: Case) -> None:
        onsite = OnSite.start(case)
        sid = onsite.open(names=("prosecutor", "examiner"), rule="all")
        agent = onsite.enroll_examiner_agent(sid)
        onsite.challenge(sid)
        onsite.scan(agent)
        onsite.record(sid)
        onsite.sign(sid, "prosecutor")
        assert onsite.sign(sid, "examiner")["state"] == "closed"
        [scope] = case.verdict()["report"]["scopes"]
        assert scope["grade"] == "examiner"


