"""Bundles of a case with on-site sessions: both tiers verify offline, and the court tier's
replay re-derives the ``witnessed`` grade from the bundled session events."""

from __future__ import annotations

from deletion_audit.bundles.layout import Tier
from tests.bundles.conftest import Bundles, codes
from tests.support.sessions import OnSite


def _witnessed(bundles: Bundles) -> None:
    case = bundles.case
    onsite = OnSite.start(case)
    sid = onsite.open()
    agent = onsite.enroll_examiner_agent(sid)
    onsite.challenge(sid)
    onsite.scan(case.agent)
    onsite.scan(agent, present=case.digests[:3])
    onsite.record(sid)
    for name in ("prosecutor", "witness", "regulator"):
        onsite.sign(sid, name)
    case.recompute()


class TestSessionBundles:
    def test_court_bundle_verifies_and_rederives_the_witnessed_grade(
        self, bundles: Bundles
    ) -> None:
        _witnessed(bundles)
        report = bundles.verify(bundles.export(Tier.COURT))
        assert codes(report) == set(), report.problems
        assert report.rederive_ran
        assert report.verdict is not None
        assert report.verdict == report.rederived

    def test_public_bundle_verifies(self, bundles: Bundles) -> None:
        _witnessed(bundles)
        report = bundles.verify(bundles.export(Tier.PUBLIC))
        assert codes(report) == set(), report.problems
