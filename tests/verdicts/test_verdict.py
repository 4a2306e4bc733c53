"""The verdict's truth table, branch by branch, over HTTP with agents enrolled through the
API, on both engines."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from deletion_audit.core import dsse, keys
from deletion_audit.core.predicates import ScanCounts
from deletion_audit.core.statements import parse_statement
from deletion_audit.log.identity import get_identity
from deletion_audit.models import Event, PartyRole, ScanItem, Verdict, VerdictMark
from tests.support import evidence
from tests.support.agents import declare_scope, enroll
from tests.verdicts.conftest import Case, reasons, register_manifest

PAST_REPLY = {"start_event": "检察建议书送达", "served_on": "2025-12-01",
              "preset": "reply-2-months"}


class TestNotVerified:
    def test_leftovers_in_a_challenged_scan(self, case: Case) -> None:
        found = case.digests[:2]
        case.scan(present=found)
        verdict = case.verdict()
        assert verdict["outcome"] == "not_verified"
        assert "items_present" in reasons(verdict)
        items = verdict["report"]["items"]
        assert (items["total"], items["present"], items["deleted"], items["unseen"]) == (6, 2, 0, 4)
        [scope] = verdict["report"]["scopes"]
        assert scope["latest_challenged_scan"]["present"] == 2
        assert scope["latest_challenged_scan"]["challenge_origin"] == "agent"
        assert scope["last_clean_challenged_scan"] is None

    def test_a_deletion_claim_does_not_hide_a_later_finding(self, case: Case) -> None:
        case.delete(case.digests[:1])
        case.scan(present=case.digests[:1], minutes=1)
        verdict = case.verdict()
        assert verdict["outcome"] == "not_verified"
        assert verdict["report"]["items"]["present"] == 1

    def test_overdue_obligation(self, case: Case) -> None:
        self._clean_case(case)
        oid = _obligation(case, kind="document", title="整改回复", deadline=PAST_REPLY)
        verdict = case.verdict()
        assert verdict["outcome"] == "not_verified"
        assert reasons(verdict) == {"obligation_overdue"}
        [obligation] = verdict["report"]["obligations"]
        assert (obligation["id"], obligation["overdue"], obligation["blocking"]) == (
            oid, True, True)

    def test_breached_obligation(self, case: Case) -> None:
        self._clean_case(case)
        oid = _obligation(case, kind="retention", title="每次访问后删除",
                          details={"max_age_hours": 24})
        r = case.client.post(f"{case.world.url}/obligations/{oid}/state",
                             headers=case.world.prosecutor.headers,
                             json={"state": "breached", "reason": "回头看发现超期保存"})
        assert r.status_code == 200, r.text
        assert reasons(case.verdict()) == {"obligation_breached"}

    @staticmethod
    def _clean_case(case: Case) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)


class TestVerified:
    def test_deletion_then_a_clean_challenged_scan(self, case: Case) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        report = verdict["report"]
        assert (report["items"]["present"], report["items"]["deleted"],
                report["items"]["unseen"]) == (0, 2, 4)
        [scope] = report["scopes"]
        assert (scope["grade"], scope["covered"], scope["vanished_items"]) == (
            "company", True, 0)
        assert scope["last_clean_challenged_scan"]["scan_id"] == "scan-2"
        assert report["limit"]["en"].startswith("Deletion is shown for the declared scopes")
        assert "公司" in report["limit"]["zh"]

    def test_the_verdict_is_a_service_signed_public_event(self, case: Case) -> None:
        case.scan()
        verdict = case.verdict()
        envelope = dsse.Envelope.from_json(verdict["envelope"].encode())
        with case.env.db.read() as session:
            identity = get_identity(session)
            assert identity is not None
            service_key = keys.public_key_from_raw(identity.service_public_key)
            event = session.execute(select(Event).where(Event.type == "verdict")).scalar_one()
        statement = parse_statement(dsse.verify(envelope, [service_key]).payload)
        assert statement.predicate["outcome"] == verdict["outcome"]
        assert statement.predicate["version"] == verdict["version"] == 1
        assert event.body["outcome"] == verdict["outcome"]
        assert event.body["items"]["total"] == 6
        # Counts only: no item digest, pseudonym or location goes to the public log.
        text = json.dumps(event.body)
        assert not any(d in text for d in case.digests)
        assert "SH-QP" not in text

    def test_waived_obligation_does_not_block(self, case: Case) -> None:
        TestNotVerified._clean_case(case)
        oid = _obligation(case, kind="document", title="整改回复", deadline=PAST_REPLY)
        assert case.verdict()["outcome"] == "not_verified"
        r = case.client.post(f"{case.world.url}/obligations/{oid}/waive",
                             headers=case.world.prosecutor.headers, json={"reason": "已口头答复"})
        assert r.status_code == 200, r.text
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        assert verdict["version"] == 2

    def test_an_examiners_agent_grades_the_scope_examiner(self, case: Case) -> None:
        examiner_agent = enroll(case.client, case.world, scope_ids=[case.scope["id"]],
                                party_id=case.world.parties[PartyRole.FORENSIC_LAB])
        case.scan(agent=examiner_agent)
        [scope] = case.verdict()["report"]["scopes"]
        assert scope["grade"] == "examiner"

    def test_people_whose_items_are_all_deleted(self, case: Case) -> None:
        people = {e.subject for e in case.entries}
        case.delete(case.digests)
        case.scan(minutes=1)
        report = case.verdict()["report"]
        assert report["people"] == {"total": len(people), "all_deleted": len(people)}
        assert report["items"]["deleted"] == 6


class TestInsufficientEvidence:
    def test_an_unchallenged_scan_does_not_count(self, case: Case) -> None:
        case.scan(present=case.digests[:2], challenged=False)
        verdict = case.verdict()
        assert verdict["outcome"] == "insufficient_evidence"
        assert "scope_not_scanned" in reasons(verdict)
        assert verdict["report"]["items"]["present"] == 0
        assert verdict["report"]["scopes"][0]["latest_challenged_scan"] is None

    def test_a_scan_before_the_last_deletion_does_not_cover(self, case: Case) -> None:
        case.scan(minutes=0)
        case.delete(case.digests[:1], minutes=5)
        verdict = case.verdict()
        assert reasons(verdict) == {"scope_not_scanned"}
        assert verdict["report"]["scopes"][0]["covered"] is False

    def test_unseen_items_are_never_counted_deleted(self, case: Case) -> None:
        case.scan()
        items = case.verdict()["report"]["items"]
        assert (items["deleted"], items["unseen"]) == (0, 6)

    def test_a_compromised_keys_statements_are_void(self, case: Case) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)
        assert case.verdict()["outcome"] == "verified"
        since = (case.env.clock.now() + timedelta(minutes=1)).isoformat()
        r = case.client.post(f"{case.world.url}/agents/{case.agent.agent_id}/revoke",
                             headers=case.world.prosecutor.headers,
                             json={"kind": "compromised", "since": since,
                                   "reason": "密钥泄露"})
        assert r.status_code == 200, r.text
        verdict = case.verdict()
        # The deletion and the clean scan after ``since`` are void; the finding before it
        # stands.
        assert verdict["outcome"] == "not_verified"
        items = verdict["report"]["items"]
        assert (items["present"], items["deleted"]) == (1, 0)

    def test_an_unbound_scope(self, case: Case) -> None:
        case.scan()
        declare_scope(case.client, case.world, name="backup")
        verdict = case.verdict()
        assert verdict["outcome"] == "insufficient_evidence"
        assert {"scope_not_bound", "scope_not_scanned"} <= reasons(verdict)

    def test_an_uncovered_data_flow(self, case: Case) -> None:
        case.scan()
        covered = _data_flow(case, scope_id=case.scope["id"])
        uncovered = _data_flow(case, vendor_party_id=case.world.parties[PartyRole.VENDOR])
        verdict = case.verdict()
        assert reasons(verdict) == {"data_flow_not_covered"}
        flows = {f["id"]: f for f in verdict["report"]["data_flows"]}
        assert flows[covered]["covered_by"] == "scope"
        assert flows[uncovered]["covered"] is False

    def test_source_not_covered(self, case: Case, tmp_path: Path) -> None:
        entries = [e.__class__(digest=e.digest, kind=e.kind, size=e.size, subject=e.subject,
                               source="SH-QP/CLOUD") for e in evidence.entries(3, seed=7)]
        new = tmp_path / "second"
        new.mkdir()
        register_manifest(case.client, case.world, new, entries,
                          supersede_reason="补充取证：云端副本")
        case.scan()
        verdict = case.verdict()
        [reason] = verdict["report"]["reasons"]
        assert (reason["code"], reason["items"]) == ("source_not_covered", 3)
        assert reason["zh"].startswith("取证")
        assert reason["en"].startswith("forensics")

    def test_a_scope_expected_to_hold_data_never_seen_holding_any(self, case: Case) -> None:
        case.scan(counts=ScanCounts(objects=0, hashed=0, hashed_bytes=0, present=0))
        assert reasons(case.verdict()) == {"expected_data_never_seen"}

    def test_items_vanished_without_a_deletion_statement(self, case: Case) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)
        verdict = case.verdict()
        assert reasons(verdict) == {"vanished_without_deletion"}
        assert verdict["report"]["scopes"][0]["vanished_items"] == 1


class TestVersions:
    def test_ingest_records_items_and_marks_the_case(self, case: Case) -> None:
        def count(model: type[Any]) -> int:
            with case.env.db.read() as session:
                n: int = session.execute(select(func.count()).select_from(model)).scalar_one()
                return n

        marks = count(VerdictMark)
        case.scan(present=case.digests[:2])
        assert (count(ScanItem), count(VerdictMark), count(Verdict)) == (2, marks + 1, 0)

    def test_the_job_waits_for_a_burst_to_settle(self, case: Case) -> None:
        case.scan()
        assert case.recompute(after=timedelta(seconds=1)) == []
        assert case.recompute(after=timedelta(seconds=6)) == [case.world.case_id]
        assert case.recompute(after=timedelta(seconds=60)) == []
        assert case.verdict(recompute=False)["version"] == 1

    def test_stale_until_recomputed(self, case: Case) -> None:
        case.scan()
        assert case.verdict()["stale"] is False
        case.scan(present=case.digests[:1])
        stale = case.verdict(recompute=False)
        assert (stale["stale"], stale["version"], stale["outcome"]) == (
            True, 1, "verified")
        fresh = case.verdict()
        assert (fresh["stale"], fresh["version"], fresh["outcome"]) == (
            False, 2, "not_verified")
        assert fresh["as_of"]["time"] >= stale["as_of"]["time"]

    def test_an_obligation_falling_due_recomputes_without_a_change(self, case: Case) -> None:
        TestNotVerified._clean_case(case)
        _obligation(case, kind="document", title="整改回复", deadline={
            "start_event": "检察建议书送达", "served_on": "2026-03-02", "amount": 3,
            "unit": "days"})
        assert case.verdict()["outcome"] == "verified"
        assert case.recompute(after=timedelta(days=30)) == [case.world.case_id]
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.prosecutor.headers)
        assert r.json()["outcome"] == "not_verified"

    def test_every_member_reads_the_verdict_an_outsider_does_not(self, case: Case) -> None:
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.witness.headers)
        assert r.status_code == 200
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.outsider.headers)
        assert r.status_code == 404


def _obligation(case: Case, **body: object) -> int:
    r = case.client.post(f"{case.world.url}/obligations", headers=case.world.prosecutor.headers,
                         json=body)
    assert r.status_code == 201, r.text
    oid: int = r.json()["id"]
    return oid


def _data_flow(case: Case, **body: object) -> int:
    r = case.client.post(f"{case.world.url}/data-flows", headers=case.world.company.headers,
                         json={"kind": "vendor", "description": "人脸比对服务",
                               "destination": "供应商云端", **body})
    assert r.status_code == 201, r.text
    fid: int = r.json()["id"]
    return fid
