"""The verdict re-derived from the case's logged events alone equals the one the service
signed: real cases built over HTTP on both engines, replayed into a fresh SQLite."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.statements import Statement, parse_statement
from deletion_audit.evidence.export import write_manifest_file
from deletion_audit.models import Attestation, PartyRole, Verdict
from deletion_audit.verdicts.engine import active_manifest
from deletion_audit.verdicts.replay import (
    Replayed,
    ReplayError,
    ReplayEvent,
    events_of_case,
    replay_case,
    replay_verdict,
)
from deletion_audit.verdicts.service import latest_verdict, report_digest
from tests.support.agents import declare_scope, enroll
from tests.support.statements import (
    Signer,
    custody_obligation,
    data_flow,
    deidentify_obligation,
)
from tests.verdicts.conftest import Case
from tests.verdicts.test_verdict import PAST_REPLY, _data_flow, _obligation


class Logged:
    """What a bundle carries for the case's latest verdict: the events, the envelopes, the
    regenerated manifest file, the signed verdict."""

    def __init__(self, case: Case, directory: Path) -> None:
        env, case_id = case.env, case.world.case_id
        # The verdict's inputs are integrated before it is computed, and its own event
        # after, as the log job does between two verdict runs.
        env.integrate()
        case.recompute()
        env.integrate()
        self.directory = directory
        self.manifest_path: Path | None = None
        with env.db.read() as session:
            verdict = latest_verdict(session, case_id=case_id)
            assert verdict is not None
            self.verdict: Verdict = verdict
            self.events = events_of_case(session, case_id)
            self.envelopes = {
                hashlib.sha256(envelope).hexdigest(): envelope
                for envelope in session.execute(select(Attestation.envelope).where(
                    Attestation.case_id == case_id)).scalars()}
            manifest = active_manifest(session, case_id)
            if manifest is not None:
                self.manifest_path = directory / "bundle-manifest.jsonl"
                with self.manifest_path.open("wb") as out:
                    write_manifest_file(session, manifest.id, out)
        self.statement: Statement = parse_statement(
            dsse.Envelope.from_json(verdict.envelope).payload)

    @property
    def signed(self) -> dict[str, Any]:
        return dict(self.statement.predicate)

    def replay(self, events: list[ReplayEvent] | None = None, **kwargs: Any) -> Replayed:
        args: dict[str, Any] = {
            "envelopes": self.envelopes, "manifest_path": self.manifest_path,
            "as_of_size": self.verdict.as_of_log_size, "workdir": self.directory} | kwargs
        return replay_case(self.events if events is None else events, **args)

    def assert_replays(self) -> dict[str, Any]:
        replayed = self.replay()
        assert replayed.predicate == self.signed
        # The whole report too: its digest is the signed statement's subject.
        assert report_digest(replayed.report) == self.statement.subject[0].sha256
        assert list(self.directory.glob("verdict-replay-*")) == []
        return replayed.predicate


def replayed(case: Case, tmp_path: Path) -> dict[str, Any]:
    return Logged(case, tmp_path).assert_replays()


class TestReplayMatchesTheSignedVerdict:
    def test_verified(self, case: Case, tmp_path: Path) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        predicate = replayed(case, tmp_path)
        assert predicate["outcome"] == "verified"
        assert predicate["items"] == {"total": 6, "present": 0, "deleted": 2, "unseen": 4}

    def test_not_verified_items_present(self, case: Case, tmp_path: Path) -> None:
        case.scan(present=case.digests[:3])
        predicate = replayed(case, tmp_path)
        assert (predicate["outcome"], predicate["reasons"]) == ("not_verified",
                                                                ["items_present"])

    def test_not_verified_overdue_and_breached_obligations(self, case: Case,
                                                           tmp_path: Path) -> None:
        case.scan()
        _obligation(case, kind="document", title="整改回复", deadline=PAST_REPLY)
        oid = _obligation(case, kind="retention", title="每次访问后删除",
                          details={"max_age_hours": 24})
        r = case.client.post(f"{case.world.url}/obligations/{oid}/state",
                             headers=case.world.prosecutor.headers,
                             json={"state": "breached", "reason": "回头看发现超期保存"})
        assert r.status_code == 200, r.text
        predicate = replayed(case, tmp_path)
        assert predicate["reasons"] == ["obligation_breached", "obligation_overdue"]

    def test_insufficient_evidence_unchallenged_and_unbound(self, case: Case,
                                                           tmp_path: Path) -> None:
        case.scan(present=case.digests[:1], challenged=False)
        declare_scope(case.client, case.world, name="backup")
        predicate = replayed(case, tmp_path)
        assert predicate["outcome"] == "insufficient_evidence"
        assert predicate["reasons"] == [
            "expected_data_never_seen", "scope_not_bound", "scope_not_scanned"]

    def test_insufficient_evidence_vanished_and_uncovered_flow(self, case: Case,
                                                              tmp_path: Path) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)
        _data_flow(case, vendor_party_id=case.world.parties[PartyRole.VENDOR])
        _data_flow(case, scope_id=case.scope["id"])
        predicate = replayed(case, tmp_path)
        assert predicate["reasons"] == ["data_flow_not_covered", "vanished_without_deletion"]

    def test_superseded_manifest_and_uncovered_source(self, case: Case,
                                                     tmp_path: Path) -> None:
        from tests.support import evidence
        from tests.verdicts.conftest import register_manifest

        second = tmp_path / "second"
        second.mkdir()
        register_manifest(case.client, case.world, second, [
            replace(e, source="SH-QP/CLOUD") for e in evidence.entries(3, seed=7)],
            supersede_reason="补充取证：云端副本")
        case.scan()
        predicate = replayed(case, tmp_path)
        assert (predicate["reasons"], predicate["items"]["total"]) == (
            ["source_not_covered"], 3)

    def test_waiver_revocation_and_examiner_agent(self, case: Case, tmp_path: Path) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[:1], minutes=1)
        examiner = enroll(case.client, case.world, scope_ids=[case.scope["id"]],
                          party_id=case.world.parties[PartyRole.FORENSIC_LAB])
        case.scan(agent=examiner, minutes=2)
        oid = _obligation(case, kind="document", title="整改回复", deadline=PAST_REPLY)
        r = case.client.post(f"{case.world.url}/obligations/{oid}/waive",
                             headers=case.world.prosecutor.headers, json={"reason": "已口头答复"})
        assert r.status_code == 200, r.text
        since = (case.env.clock.now() + timedelta(seconds=30)).isoformat()
        r = case.client.post(f"{case.world.url}/agents/{case.agent.agent_id}/revoke",
                             headers=case.world.prosecutor.headers,
                             json={"kind": "compromised", "since": since, "reason": "密钥泄露"})
        assert r.status_code == 200, r.text
        predicate = replayed(case, tmp_path)
        # The deletion after ``since`` is void: the item the company's agent found is gone
        # from the examiner's later scan with no deletion statement that counts.
        assert predicate["reasons"] == ["vanished_without_deletion"]
        assert predicate["items"]["deleted"] == 0

    def test_each_version_as_of_its_own_log_size(self, case: Case, tmp_path: Path) -> None:
        case.scan(present=case.digests[:1])
        first = Logged(case, tmp_path)
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)
        second = Logged(case, tmp_path)
        assert second.verdict.version == first.verdict.version + 1
        assert second.verdict.as_of_log_size > first.verdict.as_of_log_size
        # The later bundle's events, replayed as of the earlier size, give the earlier one.
        again = second.replay(as_of_size=first.verdict.as_of_log_size)
        assert again.predicate == first.signed
        assert second.assert_replays()["outcome"] == "verified"

    def test_another_cases_events_are_not_selected(self, case: Case) -> None:
        r = case.client.post("/api/v1/cases", headers=case.world.prosecutor.headers,
                             json={"case_number": "(2025)浙0502民初88号", "title": "景区人脸"})
        assert r.status_code == 201, r.text
        other = r.json()["id"]
        case.env.integrate()
        with case.env.db.read() as session:
            mine, theirs = events_of_case(session, case.world.case_id), events_of_case(
                session, other)
        assert {e.index for e in mine}.isdisjoint({e.index for e in theirs})
        assert {e.type for e in theirs} == {"party"}
        assert {"party", "manifest", "scope", "key-registration", "binding"} <= {
            e.type for e in mine}

    def test_the_interface_the_exporter_calls(self, case: Case, tmp_path: Path) -> None:
        case.scan()
        logged = Logged(case, tmp_path)
        assert replay_verdict(
            logged.events, envelopes=logged.envelopes, manifest_path=logged.manifest_path,
            as_of_size=logged.verdict.as_of_log_size, workdir=tmp_path) == logged.signed


class TestPeoplesStatementsReplay:
    """Statements signed by people: the envelope verifies with the key its registration
    (a public event naming no case) carries, and the same recording code runs."""

    @staticmethod
    def _clean(case: Case) -> None:
        case.scan(present=case.digests[:1])
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)

    def test_a_vendor_statement_covers_a_flow_until_its_key_is_compromised(
        self, case: Case, tmp_path: Path
    ) -> None:
        self._clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        r = vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, stated_at=case.env.clock.now() + timedelta(minutes=3))))
        assert r.status_code == 201, r.text
        first = Logged(case, tmp_path)
        assert first.assert_replays()["outcome"] == "verified"
        r = case.client.delete(f"/api/v1/users/me/keys/{vendor.key_id}",
                               headers=vendor.person.headers, params={"reason": "compromised"})
        assert r.status_code == 200, r.text
        assert replayed(case, tmp_path)["reasons"] == ["data_flow_not_covered"]

    def test_custody_destroyed_and_a_failed_deidentification(self, case: Case,
                                                            tmp_path: Path) -> None:
        self._clean(case)
        custody = custody_obligation(case.client, case.world)
        deidentify = deidentify_obligation(case.client, case.world)
        custodian = Signer.register(case.client, case.world["custodian-officer"])
        r = custodian.submit(custodian.sign(custodian.custody(
            case.world, obligation_id=custody, occurred_at=case.env.clock.now())))
        assert r.status_code == 201, r.text
        examiner = Signer.register(case.client, case.world.examiner)
        r = examiner.submit(examiner.sign(examiner.deidentify(
            case.world, checked_at=case.env.clock.now(), result="fail")))
        assert r.status_code == 201, r.text
        logged = Logged(case, tmp_path)
        predicate = logged.assert_replays()
        assert predicate["reasons"] == ["obligation_breached"]
        states = {o["id"]: o["state"] for o in logged.replay().report.model_dump()[
            "obligations"]}
        assert (states[custody], states[deidentify]) == ("discharged", "breached")

    def test_a_missing_key_registration_is_an_error(self, case: Case, tmp_path: Path) -> None:
        self._clean(case)
        flow = data_flow(case.client, case.world)
        vendor = Signer.register(case.client, case.world["vendor-officer"])
        assert vendor.submit(vendor.sign(vendor.vendor(
            case.world, flow_id=flow, stated_at=case.env.clock.now()))).status_code == 201
        logged = Logged(case, tmp_path)
        events = _without(logged.events, "key-registration", keyId=vendor.key_id)
        with pytest.raises(ReplayError, match=f"key {vendor.key_id} has no key registration"):
            logged.replay(events)


class TestItemsLoadedByASecondProcess:
    """Large manifests are loaded by a child process while the events replay."""

    @pytest.fixture(autouse=True)
    def _always_in_parallel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("deletion_audit.verdicts.replay_store.PARALLEL_FROM", 1)

    def test_the_same_verdict(self, case: Case, tmp_path: Path) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:1], minutes=1)
        predicate = replayed(case, tmp_path)
        assert predicate["items"] == {"total": 6, "present": 2, "deleted": 0, "unseen": 4}

    def test_a_broken_manifest_file_is_named(self, case: Case, tmp_path: Path) -> None:
        case.scan()
        logged = Logged(case, tmp_path)
        assert logged.manifest_path is not None
        lines = logged.manifest_path.read_bytes().split(b"\n")
        logged.manifest_path.write_bytes(b"\n".join([lines[0], lines[2], lines[1], *lines[3:]]))
        with pytest.raises(ReplayError, match=r"\(manifest\): .*bundle-manifest.jsonl: line 3: "
                           "entries are not strictly ascending"):
            logged.replay()
        assert list(tmp_path.glob("verdict-replay-*")) == []


def _without(events: list[ReplayEvent], event_type: str, **match: Any) -> list[ReplayEvent]:
    """The events less the last one of ``event_type`` whose body has ``match``."""
    found = [e for e in events if e.type == event_type
             and all(e.body.get(k) == v for k, v in match.items())]
    assert found, (event_type, match)
    return [e for e in events if e is not found[-1]]


def _altered(events: list[ReplayEvent], event_type: str, **changes: Any) -> list[ReplayEvent]:
    """The events with the last one of ``event_type`` changed."""
    last = max(i for i, e in enumerate(events) if e.type == event_type)
    out = list(events)
    out[last] = replace(events[last], body={**events[last].body, **changes})
    return out


# The replay always runs on its own SQLite from the events: each tampering starts from the
# events of a case kept on SQLite (the classes above replay cases kept on both engines).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
class TestTamperedEvidence:
    @pytest.fixture
    def logged(self, case: Case, tmp_path: Path) -> Logged:
        """A verified case whose waived, overdue obligation would otherwise block it."""
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        oid = _obligation(case, kind="document", title="整改回复", deadline=PAST_REPLY)
        r = case.client.post(f"{case.world.url}/obligations/{oid}/waive",
                             headers=case.world.prosecutor.headers, json={"reason": "已口头答复"})
        assert r.status_code == 200, r.text
        logged = Logged(case, tmp_path)
        assert logged.assert_replays()["outcome"] == "verified"
        return logged

    def test_a_dropped_clean_scan_changes_the_outcome(self, logged: Logged) -> None:
        events = _without(logged.events, "attestation", scanId="scan-2")
        predicate = logged.replay(events).predicate
        assert (predicate["outcome"], predicate["items"]["present"]) == ("not_verified", 2)

    def test_a_dropped_deletion_changes_the_outcome(self, logged: Logged) -> None:
        events = _without(logged.events, "attestation", scanId=None)
        assert logged.replay(events).predicate["reasons"] == ["vanished_without_deletion"]

    def test_a_dropped_waiver_changes_the_outcome(self, logged: Logged) -> None:
        events = _without(logged.events, "obligation", action="waived")
        assert logged.replay(events).predicate["reasons"] == ["obligation_overdue"]

    def test_a_dropped_key_registration_is_an_error(self, logged: Logged) -> None:
        events = _without(logged.events, "key-registration")
        with pytest.raises(ReplayError, match=r"^event \d+ \(binding\): agent agt_\w+ has no "
                           "earlier key registration"):
            logged.replay(events)

    def test_a_dropped_state_change_is_an_error(self, logged: Logged) -> None:
        events = _without(logged.events, "obligation", action="set")
        with pytest.raises(ReplayError, match=r"\(obligation\): obligation \d+ was not set"):
            logged.replay(events)

    def test_an_event_that_unnames_a_challenge_is_an_error(self, logged: Logged) -> None:
        events = _altered(logged.events, "attestation", challengeId=None)
        with pytest.raises(ReplayError, match="answers a challenge its event does not name"):
            logged.replay(events)

    def test_an_event_that_moves_a_statement_is_an_error(self, logged: Logged) -> None:
        events = _altered(logged.events, "attestation", seq=7)
        with pytest.raises(ReplayError, match="seq is 7, but the signed statement says 2"):
            logged.replay(events)

    def test_an_altered_scope_specification_is_an_error(self, logged: Logged) -> None:
        events = _altered(logged.events, "scope", spec={"root": "/srv/elsewhere"})
        with pytest.raises(ReplayError, match="specification does not have the digest"):
            logged.replay(events)

    def test_a_missing_envelope_is_named(self, logged: Logged) -> None:
        [missing, *_] = logged.envelopes
        envelopes = {k: v for k, v in logged.envelopes.items() if k != missing}
        with pytest.raises(ReplayError, match=f"envelope with SHA-256 {missing} is missing"):
            logged.replay(envelopes=envelopes)

    def test_an_envelope_under_a_wrong_name_is_refused(self, logged: Logged) -> None:
        names, blobs = list(logged.envelopes), list(logged.envelopes.values())
        swapped = dict(zip(names, blobs[1:] + blobs[:1], strict=True))
        with pytest.raises(ReplayError, match="is missing"):
            logged.replay(envelopes=swapped)

    def test_an_altered_manifest_file_is_an_error(self, logged: Logged) -> None:
        assert logged.manifest_path is not None
        data = logged.manifest_path.read_bytes()
        logged.manifest_path.write_bytes(data.replace(b'"size":', b'"size":1', 1))
        with pytest.raises(ReplayError, match=r"\(manifest\): .*SHA-256 [0-9a-f]{64} is not "
                           "the registered manifest's"):
            logged.replay()

    def test_no_manifest_file_is_an_error(self, logged: Logged) -> None:
        with pytest.raises(ReplayError, match="no manifest file was given"):
            logged.replay(manifest_path=None)

    def test_events_out_of_log_order_are_an_error(self, logged: Logged) -> None:
        events = [logged.events[1], logged.events[0], *logged.events[2:]]
        with pytest.raises(ReplayError, match="not in log order"):
            logged.replay(events)

    def test_a_log_size_no_verdict_was_computed_at(self, logged: Logged) -> None:
        size = logged.verdict.as_of_log_size - 1
        with pytest.raises(ReplayError, match=f"no verdict event was computed as of log size "
                           f"{size}"):
            logged.replay(as_of_size=size)
        # Given the version and time (as a verifier reads them from a signed predicate), it
        # replays the events below that size.
        replayed = logged.replay(as_of_size=size, version=9, as_of=logged.verdict.as_of)
        assert (replayed.predicate["version"], replayed.predicate["asOfLogSize"]) == (9, size)


class TestSignaturesTheCallerVerified:
    """``verified`` spares the replay a second check of the very bytes a bundle's verifier
    checked with the very key; every other envelope is verified as always."""

    @pytest.fixture
    def logged(self, case: Case, tmp_path: Path) -> Logged:
        case.delete(case.digests[:2])
        case.scan(minutes=1)
        return Logged(case, tmp_path)

    @staticmethod
    def _agent_key(logged: Logged) -> bytes:
        [registration] = [e for e in logged.events if e.type == "key-registration"
                          and e.body.get("subjectType") == "agent"]
        return b64decode(str(registration.body["publicKey"]))

    @staticmethod
    def _forged(logged: Logged) -> tuple[list[ReplayEvent], dict[str, bytes], str, str]:
        """The deletion's envelope with a signature its agent never made, named by its
        event: (events, envelopes, the forged envelope's SHA-256, the genuine one's)."""
        [deletion] = [e for e in logged.events if e.type == "attestation"
                      and e.body.get("scanId") is None]
        genuine = str(deletion.body["envelopeSha256"])
        wire = json.loads(logged.envelopes[genuine])
        wire["signatures"][0]["sig"] = b64encode(bytes(64))
        forged = json.dumps(wire).encode()
        sha = hashlib.sha256(forged).hexdigest()
        events = [replace(e, body={**e.body, "envelopeSha256": sha}) if e is deletion else e
                  for e in logged.events]
        return events, {**logged.envelopes, sha: forged}, sha, genuine

    def test_the_same_verdict_with_every_envelope_verified_by_the_caller(
            self, logged: Logged) -> None:
        key = self._agent_key(logged)
        replayed = logged.replay(verified={(sha, key): None for sha in logged.envelopes})
        assert replayed.predicate == logged.signed

    def test_the_payloads_the_caller_kept_are_not_read_again(self, logged: Logged) -> None:
        key = self._agent_key(logged)
        kept = {(sha, key): dsse.Envelope.from_json(envelope).payload
                for sha, envelope in logged.envelopes.items()}
        replayed = logged.replay(envelopes={}, verified=kept)
        assert replayed.predicate == logged.signed

    def test_a_forged_signature_is_refused(self, logged: Logged) -> None:
        events, envelopes, _, _ = self._forged(logged)
        with pytest.raises(ReplayError, match=r"\(attestation\): the envelope is not signed "
                           r"by agent agt_\w+'s registered key"):
            logged.replay(events, envelopes=envelopes)

    def test_a_pair_for_other_bytes_or_another_key_does_not_spare_the_check(
            self, logged: Logged) -> None:
        events, envelopes, forged, genuine = self._forged(logged)
        other = keys.raw_public(keys.generate().public_key())
        for verified in ({(genuine, self._agent_key(logged)): None}, {(forged, other): None}):
            with pytest.raises(ReplayError, match="is not signed by agent"):
                logged.replay(events, envelopes=envelopes, verified=verified)
