"""A case whose follow-up reviews changed its verdict still exports and verifies in both
tiers: the bundle's replay rebuilds the closed reviews (and checks the unannounced reveal)
from the court tier's opened events."""

from __future__ import annotations

import zipfile

from deletion_audit.bundles.layout import JUDGMENTS, Tier
from deletion_audit.bundles.verify import Exit
from tests.bundles.conftest import Bundles, bundles, codes
from tests.reviews.conftest import DAY, WINDOW, Reviewed

__all__ = ["bundles"]  # the fixture, shared with the bundle tests


class TestReviewsInBundles:
    def test_a_case_with_reviews_verifies_in_both_tiers(self, bundles: Bundles) -> None:
        case = bundles.case
        reviewed = Reviewed(case)
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers,
                            json={"offsets_days": [30], "unannounced": {
                                "count": 1, "window_from_days": 5, "window_to_days": 10}})
        assert r.status_code == 200, r.text
        reviewed.tick(reviewed.anchor + DAY)
        [secret] = [x for x in reviewed.reviews() if x.kind == "unannounced"]
        [opened] = reviewed.tick(secret.due_at).reviews.opened
        reviewed.answer(opened, present=case.digests[:1])
        reviewed.tick(secret.due_at + WINDOW)
        assert reviewed.verdict(secret.due_at + WINDOW)["outcome"] == "not_verified"
        paths = {}
        for tier in (Tier.COURT, Tier.PUBLIC):
            paths[tier] = bundles.export(tier)
            result = bundles.verify(paths[tier])
            # Every check passes; the exit code is the case's verdict, which the review
            # made not_verified.
            assert result.problems == [], (tier, result)
            assert result.exit is Exit.NOT_VERIFIED, (tier, result)
        # The court tier carries each signed judgment: the review's outcome, and the
        # agent's late and dark findings (it was silent for days between the ticks).
        with zipfile.ZipFile(paths[Tier.COURT]) as zf:
            signed = [n for n in zf.namelist() if n.startswith(JUDGMENTS)]
        with zipfile.ZipFile(paths[Tier.PUBLIC]) as zf:
            assert not any(n.startswith(JUDGMENTS) for n in zf.namelist())
        court = bundles.verify(paths[Tier.COURT])
        assert court.counts["judgments"] == len(signed) == 3
        # Dropping one (the index re-signed, as an insider could) is caught.
        dropped = bundles.tamper(paths[Tier.COURT], resign=True, change=lambda name, data:
                                 None if name == signed[0] else data)
        assert "judgment" in codes(bundles.verify(dropped))
