"""A case with the service's judgments in its log still exports and verifies: judgments are
restricted events of the case (opened in the court tier), and they do not change the
verdict a bundle's replay derives."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.verify import Exit
from deletion_audit.models import Judgment
from deletion_audit.scheduling.tick import tick
from tests.bundles.conftest import Bundles, bundles, deleted_and_clean

__all__ = ["bundles"]  # the fixture, shared with the bundle tests


class TestJudgmentsInBundles:
    def test_a_case_with_judgments_verifies_in_both_tiers(self, bundles: Bundles) -> None:
        deleted_and_clean(bundles.case)
        env = bundles.env
        # The company's agent then falls silent for a day: late and dark.
        report = tick(env.db, service_key=env.ctx.keys.service_key,
                      now=env.clock.now() + timedelta(days=1))
        assert sorted(e.split(":")[0] for e in report.judgments) == ["dark", "late"]
        env.integrate()
        with env.db.read() as session:
            assert len(session.execute(select(Judgment)).scalars().all()) == 2
        for tier in (Tier.COURT, Tier.PUBLIC):
            result = bundles.verify(bundles.export(tier))
            assert result.exit is Exit.VERIFIED, (tier, result)
