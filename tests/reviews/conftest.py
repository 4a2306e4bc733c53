"""The verdict tests' small case (a manifest of six items, a scope, the company's agent),
made verified, with helpers to move the domain clock and tick."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from deletion_audit.models import Challenge, ChallengeOrigin, Event, LogLeaf, Review, Verdict
from deletion_audit.scheduling.tick import TickReport, tick
from deletion_audit.verdicts.service import latest_verdict
from tests.verdicts import conftest as verdicts
from tests.verdicts.conftest import Case

case = verdicts.case

__all__ = ["Reviewed", "case", "reviewed"]


class Reviewed:
    """A verified case whose follow-up reviews the tests drive by passing ``now``."""

    def __init__(self, case: Case) -> None:
        self.case = case
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        verdict = case.verdict()
        assert verdict["outcome"] == "verified", verdict["report"]["reasons"]
        with case.env.db.read() as session:
            self.anchor: datetime = session.execute(select(Verdict.as_of).where(
                Verdict.case_id == case.world.case_id, Verdict.outcome == "verified")
            ).scalars().first()

    @property
    def env(self) -> Any:
        return self.case.env

    def tick(self, at: datetime) -> TickReport:
        """Tick at ``at`` (the app's domain clock moves there too: agents answer then)."""
        self.env.clock.at = max(self.env.clock.at, at)
        return tick(self.env.db, service_key=self.env.ctx.keys.service_key, now=at)

    def reviews(self) -> list[Review]:
        with self.env.db.read() as session:
            return list(session.execute(select(Review).order_by(Review.id)).scalars())

    def review_challenges(self, review_id: int) -> list[Challenge]:
        with self.env.db.read() as session:
            review = session.get_one(Review, review_id)
            rows = list(session.execute(select(Challenge).where(
                Challenge.id.in_(review.challenge_ids or []))).scalars())
        assert rows
        assert all(r.origin == ChallengeOrigin.REVIEW.value for r in rows)
        return rows

    def answer(self, review_id: int, present: list[str] | None = None,
               **overrides: Any) -> dict[str, Any]:
        """The company's agent answers the review's challenge with a scan."""
        [challenge] = self.review_challenges(review_id)
        case = self.case
        chain = case._chain(None)
        case.scans += 1
        predicate = chain.agent.scan(
            seq=chain.seq, prev=chain.prev, scope=case.scope, scan_id=f"scan-{case.scans}",
            challenge=challenge.nonce, present=present or [],
            finished_at=self.env.clock.now(), **overrides)
        return case._submit(chain, predicate)

    def events(self, action: str | None = None) -> list[tuple[int, dict[str, Any]]]:
        """The logged review events (log index, body), in log order."""
        self.env.integrate()
        with self.env.db.read() as session:
            rows = session.execute(
                select(LogLeaf.idx, Event.body)
                .join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
                .where(Event.type == "review").order_by(LogLeaf.idx)).all()
        return [(int(i), dict(b)) for i, b in rows
                if action is None or b.get("action") == action]

    def verdict(self, at: datetime) -> dict[str, Any]:
        """The case's verdict recomputed at ``at`` (read from its row: people's tokens
        expire on the domain clock, months ahead)."""
        self.env.clock.at = max(self.env.clock.at, at)
        self.case.recompute()
        with self.env.db.read() as session:
            row = latest_verdict(session, case_id=self.case.world.case_id)
            assert row is not None
            return {"outcome": row.outcome, "report": row.report}


@pytest.fixture
def reviewed(case: Case) -> Reviewed:
    return Reviewed(case)


DAY = timedelta(days=1)
WINDOW = timedelta(hours=72)
