"""Bundles of a case with on-site sessions: both tiers carry each record with its
co-signatures and verify offline (signatures against the participants' logged key
registrations, the sign-off rule); the court tier opens the commitment to the item lists and
its replay re-derives the ``witnessed`` grade. Tampering is caught."""

from __future__ import annotations

import json
import zipfile

from deletion_audit.bundles import sessions as bundled
from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.summary import render
from deletion_audit.core.b64 import b64encode
from tests.bundles.conftest import Bundles, codes, read_member
from tests.support.sessions import OnSite


def _two_sessions(bundles: Bundles) -> list[int]:
    """Case 5 in small: a session with findings, deletion, a clean one."""
    case = bundles.case
    onsite = OnSite.start(case)
    sids = []
    for present, minutes in ((case.digests[:3], 0), ([], 2)):
        sid = onsite.open()
        agent = onsite.enroll_examiner_agent(sid)
        onsite.challenge(sid)
        onsite.scan(case.agent, minutes=minutes)
        onsite.scan(agent, present=present, minutes=minutes)
        onsite.record(sid)
        for name in ("prosecutor", "witness", "regulator"):
            onsite.sign(sid, name)
        if present:
            case.delete(present, minutes=1)
        sids.append(sid)
    case.recompute()
    return sids


class TestSessionBundles:
    def test_court_bundle_verifies_opens_the_lists_and_rederives(
        self, bundles: Bundles
    ) -> None:
        sids = _two_sessions(bundles)
        path = bundles.export(Tier.COURT)
        report = bundles.verify(path)
        assert codes(report) == set(), report.problems
        assert report.rederive_ran
        assert report.verdict is not None
        assert report.verdict == report.rederived
        assert report.verdict["outcome"] == "verified"
        assert [(s.session_id, s.outcome, s.sign_off_met, s.witnessed)
                for s in report.sessions] == [
            (str(sids[0]), "findings", True, True), (str(sids[1]), "clean", True, True)]
        assert report.counts["sessions"] == 2
        lists = json.loads(read_member(path, bundled.items_path(sids[0])))
        found = {d for scope in lists["lists"]["scopes"] for scan in scope["scans"]
                 for d in scan["present"]}
        assert found == set(bundles.case.digests[:3])
        text = render(report, "zh")
        assert f"现场勘验 {sids[0]}：有发现；签署规则已满足" in text

    def test_public_bundle_shows_both_sessions_without_lists(self, bundles: Bundles) -> None:
        sids = _two_sessions(bundles)
        path = bundles.export(Tier.PUBLIC)
        report = bundles.verify(path)
        assert codes(report) == set(), report.problems
        assert [s.outcome for s in report.sessions] == ["findings", "clean"]
        assert all(len(s.signers) == 3 for s in report.sessions)
        for sid in sids:
            read_member(path, bundled.envelope_path(sid))
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
        assert not any(n.endswith("items.json") for n in names)
        assert "on-site session" in render(report, "en")

    def test_a_forged_co_signature_is_caught(self, bundles: Bundles) -> None:
        sids = _two_sessions(bundles)
        target = bundled.envelope_path(sids[1])

        def forge(name: str, data: bytes) -> bytes:
            if name != target:
                return data
            envelope = json.loads(data)
            envelope["signatures"][0]["sig"] = b64encode(bytes(64))
            return json.dumps(envelope).encode()

        report = bundles.verify(bundles.tamper(bundles.export(Tier.PUBLIC), change=forge,
                                               resign=True))
        assert "session" in codes(report)
        [changed] = [s for s in report.sessions if s.session_id == str(sids[1])]
        assert changed.sign_off_met is False

    def test_lists_that_do_not_open_the_commitment_are_caught(self, bundles: Bundles) -> None:
        sids = _two_sessions(bundles)
        target = bundled.items_path(sids[0])

        def drop_one(name: str, data: bytes) -> bytes:
            if name != target:
                return data
            attachment = json.loads(data)
            [scan] = [s for s in attachment["lists"]["scopes"][0]["scans"] if s["present"]]
            scan["present"].pop()
            return json.dumps(attachment).encode()

        report = bundles.verify(bundles.tamper(bundles.export(Tier.COURT), change=drop_one,
                                               resign=True))
        assert any(p.code == "session" and "does not open" in p.message
                   for p in report.problems)
