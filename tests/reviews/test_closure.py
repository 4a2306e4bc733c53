"""Closing a case: its active agents decommissioned, its reviews not yet opened cancelled,
each logged, in the status change's own transaction."""

from __future__ import annotations

from sqlalchemy import select

from deletion_audit.models import Agent, Event
from tests.reviews.conftest import DAY, Reviewed
from tests.reviews.test_reviews import case_status, to_monitoring


def close(reviewed: Reviewed) -> None:
    case = reviewed.case
    r = case.client.post(f"{case.world.url}/status", headers=case.world.prosecutor.headers,
                         json={"status": "closed"})
    assert r.status_code == 200, r.text


def agents(reviewed: Reviewed) -> list[Agent]:
    with reviewed.env.db.read() as session:
        return list(session.execute(select(Agent).where(
            Agent.case_id == reviewed.case.world.case_id).order_by(Agent.id)).scalars())


def revocations(reviewed: Reviewed) -> list[dict[str, object]]:
    with reviewed.env.db.read() as session:
        return [dict(b) for b in session.execute(select(Event.body).where(
            Event.type == "key-revocation").order_by(Event.id)).scalars()]


class TestClosure:
    def test_closing_decommissions_the_agents_and_cancels_the_reviews_ahead(
            self, reviewed: Reviewed) -> None:
        reviewed.tick(reviewed.anchor + DAY)
        # The first review opens; the two later ones are still planned when the case closes.
        [opened] = reviewed.tick(reviewed.anchor + 30 * DAY).reviews.opened
        before = agents(reviewed)
        assert before
        assert {a.status for a in before} == {"active"}
        assert revocations(reviewed) == []
        to_monitoring(reviewed)
        close(reviewed)
        assert case_status(reviewed) == "closed"
        after = agents(reviewed)
        assert [(a.status, a.revocation_reason) for a in after] == [
            ("decommissioned", "case closed")] * len(before)
        assert all(a.revoked_by == reviewed.case.world.prosecutor.user_id for a in after)
        assert [(b["subjectId"], b["kind"]) for b in revocations(reviewed)] == [
            (a.public_id, "decommissioned") for a in before]
        states = {r.id: r.state for r in reviewed.reviews()}
        assert states.pop(opened) == "open"
        assert list(states.values()) == ["cancelled", "cancelled"]
        cancelled = reviewed.events("cancelled")
        assert sorted(int(b["reviewId"]) for _, b in cancelled) == sorted(states)
        assert {b["reason"] for _, b in cancelled} == {"case closed"}
        # Nothing ahead opens, however late the tick.
        assert reviewed.tick(reviewed.anchor + 400 * DAY).reviews.opened == []

    def test_a_refused_closure_changes_nothing(self, reviewed: Reviewed) -> None:
        reviewed.tick(reviewed.anchor + DAY)
        case = reviewed.case
        r = case.client.post(f"{case.world.url}/status", headers=case.world.prosecutor.headers,
                             json={"status": "closed"})
        assert r.status_code == 409  # an open case cannot close
        assert {a.status for a in agents(reviewed)} == {"active"}
        assert {r.state for r in reviewed.reviews()} == {"planned"}
        assert revocations(reviewed) == []
