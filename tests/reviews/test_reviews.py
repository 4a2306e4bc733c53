"""Follow-up reviews (回头看) driven by ``tick(now)`` with the domain clock moved by passing
``now`` (no sleeps): each outcome, its signed statement, what it does to the verdict and
the case status, the unannounced commitment and its reveal, late and repeated ticks, the
API, and the verdict replayed from the log — on both engines."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from deletion_audit.core import dsse
from deletion_audit.core.predicates import AgeSummary, JudgmentPredicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.models import Case as CaseRow
from deletion_audit.models import Challenge, OutboxMessage, Review
from deletion_audit.notifications import service as notifications
from deletion_audit.reviews import commitment
from deletion_audit.scheduling.tick import tick
from deletion_audit.verdicts.replay import ReplayError, ReplayEvent
from tests.reviews.conftest import DAY, WINDOW, Reviewed
from tests.verdicts.conftest import reasons
from tests.verdicts.test_replay import Logged
from tests.verdicts.test_verdict import _obligation


def signed_outcome(reviewed: Reviewed, review: Review) -> JudgmentPredicate:
    assert review.envelope is not None
    verified = dsse.verify(dsse.from_json(review.envelope),
                           [reviewed.env.ctx.keys.service_key.public_key()])
    return JudgmentPredicate.model_validate(dict(parse_statement(verified.payload).predicate))


def to_monitoring(reviewed: Reviewed) -> None:
    case = reviewed.case
    for status in ("remediating", "verifying", "monitoring"):
        r = case.client.post(f"{case.world.url}/status", headers=case.world.prosecutor.headers,
                             json={"status": status})
        assert r.status_code == 200, r.text


def case_status(reviewed: Reviewed) -> str:
    with reviewed.env.db.read() as session:
        return session.get_one(CaseRow, reviewed.case.world.case_id).status


class TestPlan:
    def test_the_default_plan_is_anchored_at_the_first_verified_verdict(
            self, reviewed: Reviewed) -> None:
        report = reviewed.tick(reviewed.anchor + DAY)
        assert report.reviews.anchored == [reviewed.case.world.case_id]
        assert [(r.kind, r.state, r.due_at - reviewed.anchor) for r in reviewed.reviews()] == [
            ("announced", "planned", d * DAY) for d in (30, 90, 180)]
        assert reviewed.tick(reviewed.anchor + 2 * DAY).reviews.anchored == []
        assert len(reviewed.reviews()) == 3
        assert [b["dueAt"] for _, b in reviewed.events("scheduled")] == [
            (reviewed.anchor + d * DAY).isoformat().replace("+00:00", "Z")
            for d in (30, 90, 180)]

    def test_plan_edits_are_logged_and_replan_what_lies_ahead(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        reviewed.tick(reviewed.anchor + DAY)
        reviewed.env.clock.at = reviewed.anchor + 2 * DAY
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers,
                            json={"offsets_days": [1, 60], "response_hours": 48})
        assert r.status_code == 200, r.text
        assert r.json()["offsets_days"] == [1, 60]
        live = [x for x in reviewed.reviews() if x.state == "planned"]
        # +1 day already passed when the plan changed: only +60 lies ahead.
        assert [(x.due_at - reviewed.anchor, x.response_hours) for x in live] == [
            (60 * DAY, 48)]
        assert len(reviewed.events("cancelled")) == 3
        # The default plan, logged when the case was first verified, then the edit.
        [(_, default), (_, plan)] = reviewed.events("plan")
        assert (default["offsetsDays"], default["by"]) == ([30, 90, 180], None)
        assert plan["offsetsDays"] == [1, 60]
        assert plan["by"] is not None

    def test_bad_plans_are_refused(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        for body, status in (({"offsets_days": [0]}, 422),
                             ({"offsets_days": [30, 30]}, 422),
                             ({"unannounced": {"count": 1}}, 422),
                             ({"unannounced": {"count": 1, "window_from_days": 20,
                                               "window_to_days": 10}}, 422),
                             ({"response_hours": 0}, 422),
                             ({"extra": 1}, 422)):
            r = case.client.put(f"{case.world.url}/reviews/plan",
                                headers=case.world.prosecutor.headers, json=body)
            assert r.status_code == status, (body, r.text)
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.company.headers, json={})
        assert r.status_code == 403


class TestOutcomes:
    def test_clean(self, reviewed: Reviewed) -> None:
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        assert reviewed.tick(opened_at - DAY).reviews.opened == []
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.env.clock.at = opened_at + DAY / 8
        reviewed.answer(first)
        assert reviewed.tick(opened_at + WINDOW - DAY).reviews.closed == []
        assert reviewed.tick(opened_at + WINDOW).reviews.closed == [first]
        review = reviewed.reviews()[0]
        assert (review.outcome, review.findings) == ("clean", [])
        predicate = signed_outcome(reviewed, review)
        assert (predicate.finding, predicate.case_id) == (
            "review-clean", str(reviewed.case.world.case_id))
        assert reviewed.verdict(opened_at + WINDOW)["outcome"] == "verified"

    def test_findings_items_back_make_it_not_verified_and_the_case_go_back(
            self, reviewed: Reviewed) -> None:
        to_monitoring(reviewed)
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first, present=reviewed.case.digests[:1])
        reviewed.tick(opened_at + WINDOW)
        review = reviewed.reviews()[0]
        assert review.outcome == "findings"
        assert review.findings == [{"code": "items_present",
                                    "scopeId": reviewed.case.scope["id"], "items": 1}]
        assert signed_outcome(reviewed, review).finding == "review-findings"
        verdict = reviewed.verdict(opened_at + WINDOW)
        assert verdict["outcome"] == "not_verified"
        assert {"review_items_present", "items_present"} <= reasons(verdict)
        assert case_status(reviewed) == "remediating"

    def test_deleting_again_inside_the_window_closes_clean(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first, present=case.digests[:1])
        assert reviewed.verdict(opened_at + DAY)["outcome"] == "not_verified"
        case.delete(case.digests[:1], minutes=1)
        case.scan(minutes=2)  # the agent's own challenge, issued after the review opened
        reviewed.tick(opened_at + WINDOW)
        assert reviewed.reviews()[0].outcome == "clean"
        assert reviewed.verdict(opened_at + WINDOW)["outcome"] == "verified"

    def test_partial_coverage_is_a_finding_and_insufficient_evidence(
            self, reviewed: Reviewed) -> None:
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first, coverage="partial")
        reviewed.tick(opened_at + WINDOW)
        review = reviewed.reviews()[0]
        assert (review.outcome, [f["code"] for f in review.findings or []]) == (
            "findings", ["partial_coverage"])
        verdict = reviewed.verdict(opened_at + WINDOW)
        assert verdict["outcome"] == "insufficient_evidence"
        assert "review_findings" in reasons(verdict)

    def test_a_refused_statement_is_a_broken_history(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first)
        # A second statement claiming the number the answer holds: a fork, refused.
        chain = case._chain(None)
        fork = chain.agent.deletion(seq=chain.seq - 1, prev="e" * 64, scope=case.scope,
                                    digests=case.digests[:1], deleted_at=opened_at)
        r = chain.agent.submit(chain.agent.sign_statement(fork))
        assert r.status_code == 409, r.text
        reviewed.tick(opened_at + WINDOW)
        review = reviewed.reviews()[0]
        assert review.outcome == "findings"
        assert review.findings == [{"code": "agent_refused", "agentId": case.agent.agent_id,
                                    "refusals": ["fork"]}]
        assert "review_findings" in reasons(reviewed.verdict(opened_at + WINDOW))

    def test_an_answer_without_ages_under_a_retention_rule_is_a_finding(
            self, reviewed: Reviewed) -> None:
        """Regression: a review's answering scan of a ruled scope closed clean without the
        age summary the rule is checked on."""
        case = reviewed.case
        _obligation(case, kind="retention", title="人脸图像 24 小时内删除",
                    details={"max_age_hours": 24, "kinds": ["image"]})
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first)
        reviewed.tick(opened_at + WINDOW)
        review = reviewed.reviews()[0]
        assert (review.outcome, review.findings) == (
            "findings", [{"code": "retention_unchecked", "scopeId": case.scope["id"]}])
        verdict = reviewed.verdict(opened_at + WINDOW)
        assert verdict["outcome"] == "insufficient_evidence"
        assert reasons(verdict) == {"review_findings", "retention_unchecked"}
        # The next review answered with ages closes clean.
        second = reviewed.anchor + 90 * DAY
        [again] = reviewed.tick(second).reviews.opened
        reviewed.answer(again, ages={"image": AgeSummary(
            count=2, oldest=second - timedelta(hours=3), histogram={"under-24h": 2})})
        assert reviewed.tick(second + WINDOW).reviews.closed == [again]
        assert [r.outcome for r in reviewed.reviews() if r.id == again] == ["clean"]
        assert reviewed.verdict(second + WINDOW)["outcome"] == "verified"

    def test_no_response(self, reviewed: Reviewed) -> None:
        to_monitoring(reviewed)
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        reviewed.tick(opened_at)
        [closed] = reviewed.tick(opened_at + WINDOW).reviews.closed
        review = reviewed.reviews()[0]
        assert (review.id, review.outcome) == (closed, "no_response")
        assert signed_outcome(reviewed, review).finding == "review-no-response"
        verdict = reviewed.verdict(opened_at + WINDOW)
        assert verdict["outcome"] == "insufficient_evidence"
        assert reasons(verdict) == {"review_no_response"}
        assert case_status(reviewed) == "remediating"
        # A later review answered clean restores the verdict.
        second = reviewed.anchor + 90 * DAY
        [again] = reviewed.tick(second).reviews.opened
        reviewed.answer(again)
        reviewed.tick(second + WINDOW)
        assert reviewed.verdict(second + WINDOW)["outcome"] == "verified"


class TestUnannounced:
    def test_committed_when_drawn_revealed_when_opened(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers,
                            json={"offsets_days": [200],
                                  "unannounced": {"count": 1, "window_from_days": 10,
                                                  "window_to_days": 20}})
        assert r.status_code == 200, r.text
        reviewed.tick(reviewed.anchor + DAY)
        [(committed_at, committed)] = reviewed.events("committed")
        assert set(committed) == {"caseId", "action", "reviewId", "kind", "commitment", "at"}
        # Nobody reads the instant before it comes: not in the log, not from the API.
        listed = case.client.get(f"{case.world.url}/reviews",
                                 headers=case.world.prosecutor.headers).json()["items"]
        hidden = next(x for x in listed if x["kind"] == "unannounced")
        assert (hidden["due_at"], hidden["salt"]) == (None, None)
        assert hidden["commitment"] == committed["commitment"]
        [secret] = [x for x in reviewed.reviews() if x.kind == "unannounced"]
        assert reviewed.anchor + 10 * DAY <= secret.due_at < reviewed.anchor + 20 * DAY
        assert reviewed.tick(secret.due_at - DAY / 86400).reviews.opened == []
        assert reviewed.tick(secret.due_at).reviews.opened == [secret.id]
        [(opened_at, opened)] = reviewed.events("opened")
        assert committed_at < opened_at
        # A verifier recomputes the commitment from what the opening logged.
        assert commitment.verify(committed["commitment"], opened["dueAt"], opened["salt"])
        later = secret.due_at + DAY / 86400
        assert not commitment.verify(committed["commitment"],
                                     later.isoformat().replace("+00:00", "Z"), opened["salt"])
        assert not commitment.verify(committed["commitment"], opened["dueAt"], "00" * 32)
        listed = case.client.get(f"{case.world.url}/reviews",
                                 headers=case.world.prosecutor.headers).json()["items"]
        shown = next(x for x in listed if x["kind"] == "unannounced")
        assert shown["salt"] == opened["salt"]
        assert shown["due_at"] is not None


class TestTicks:
    def test_a_late_and_a_repeated_tick_do_each_effect_once(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        with reviewed.env.db.write() as session:
            notifications.add_recipient(
                session, case_id=case.world.case_id, role="prosecutor", channel="email",
                address="zhang@procuratorate.example", created_by=None, development=False,
                now=reviewed.env.clock.now())
        late = reviewed.anchor + 200 * DAY
        report = reviewed.tick(late)
        assert report.reviews.anchored == [case.world.case_id]
        assert len(report.reviews.opened) == 3
        again = reviewed.tick(late)
        assert (again.reviews.anchored, again.reviews.opened, again.reviews.closed) == (
            [], [], [])
        closing = reviewed.tick(late + WINDOW)
        assert sorted(closing.reviews.closed) == sorted(report.reviews.opened)
        assert reviewed.tick(late + 2 * WINDOW).reviews.closed == []
        assert [len(reviewed.events(a)) for a in ("opened", "closed")] == [3, 3]
        with reviewed.env.db.read() as session:
            challenges = session.execute(select(func.count()).select_from(Challenge).where(
                Challenge.origin == "review")).scalar_one()
            # (The agent, silent for months, is also judged late and dark: not counted here.)
            messages = [m for m in session.execute(select(OutboxMessage)).scalars()
                        if m.payload["type"].startswith("review.")]
            kinds = sorted(m.payload["type"] for m in messages)
            subjects = [m.subject for m in messages]
        assert challenges == 3
        assert kinds == ["review.closed"] * 3 + ["review.opened"] * 3
        assert all(s.startswith("【回头看】") for s in subjects)


class TestApi:
    def test_start_now_list_and_permissions(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        r = case.client.post(f"{case.world.url}/reviews", headers=case.world.company.headers)
        assert r.status_code == 403
        r = case.client.post(f"{case.world.url}/reviews", headers=case.world.prosecutor.headers)
        assert r.status_code == 201, r.text
        started = r.json()
        assert (started["kind"], started["state"], started["challenges"]) == (
            "on_demand", "open", 1)
        reviewed.tick(reviewed.anchor + DAY)  # anchors the plan: three more
        pages, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            r = case.client.get(f"{case.world.url}/reviews", params=params,
                                headers=case.world.company.headers)
            assert r.status_code == 200, r.text
            pages.append([x["id"] for x in r.json()["items"]])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [2, 2]
        ids = [i for p in pages for i in p]
        assert ids == sorted(ids)
        r = case.client.get(f"{case.world.url}/reviews", headers=case.world.witness.headers)
        assert r.status_code == 403
        r = case.client.get(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers)
        assert r.status_code == 200
        assert r.json()["anchored_at"] is not None


class TestReplay:
    def test_a_case_with_reviews_replays_to_its_signed_verdict(
            self, reviewed: Reviewed, tmp_path: Path) -> None:
        case = reviewed.case
        case.client.put(f"{case.world.url}/reviews/plan", headers=case.world.prosecutor.headers,
                        json={"offsets_days": [30],
                              "unannounced": {"count": 1, "window_from_days": 40,
                                              "window_to_days": 50}})
        reviewed.tick(reviewed.anchor + DAY)
        opened_at = reviewed.anchor + 30 * DAY
        [first] = reviewed.tick(opened_at).reviews.opened
        reviewed.answer(first, present=case.digests[:1])
        reviewed.tick(opened_at + WINDOW)
        reviewed.env.clock.at = opened_at + WINDOW
        predicate = Logged(case, tmp_path).assert_replays()
        assert predicate["outcome"] == "not_verified"
        assert "review_items_present" in predicate["reasons"]
        # The unannounced one opens (its reveal is checked against its commitment) and
        # goes unanswered.
        [secret] = [x for x in reviewed.reviews() if x.kind == "unannounced"]
        reviewed.tick(secret.due_at)
        reviewed.tick(secret.due_at + WINDOW)
        reviewed.env.clock.at = secret.due_at + WINDOW
        predicate = Logged(case, tmp_path).assert_replays()
        assert "review_no_response" in predicate["reasons"]


class TestClosedCases:
    def test_a_closed_case_has_no_reviews_opened_or_started(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        reviewed.tick(reviewed.anchor + DAY)
        to_monitoring(reviewed)
        r = case.client.post(f"{case.world.url}/status", headers=case.world.prosecutor.headers,
                             json={"status": "closed"})
        assert r.status_code == 200, r.text
        r = case.client.post(f"{case.world.url}/reviews", headers=case.world.prosecutor.headers)
        assert r.status_code == 409
        assert "closed" in r.json()["message"]
        assert reviewed.tick(reviewed.anchor + 200 * DAY).reviews.opened == []
        assert {r.state for r in reviewed.reviews()} == {"cancelled"}


class TestConcurrentTicks:
    def test_two_instances_ticking_at_once_do_each_effect_once(
            self, reviewed: Reviewed) -> None:
        late = reviewed.anchor + 200 * DAY
        reviewed.env.clock.at = late + WINDOW
        barrier = threading.Barrier(2)

        def run(at: datetime) -> None:
            barrier.wait()
            tick(reviewed.env.db, service_key=reviewed.env.ctx.keys.service_key, now=at)

        for at in (late, late + WINDOW):
            with ThreadPoolExecutor(2) as pool:
                for future in [pool.submit(run, at) for _ in range(2)]:
                    future.result()
        assert [len(reviewed.events(a)) for a in ("scheduled", "opened", "closed")] == [
            3, 3, 3]
        assert [r.state for r in reviewed.reviews()] == ["closed"] * 3
        with reviewed.env.db.read() as session:
            assert session.execute(select(func.count()).select_from(Challenge).where(
                Challenge.origin == "review")).scalar_one() == 3

    def test_a_reveal_that_does_not_open_its_commitment_stops_the_replay(
            self, reviewed: Reviewed, tmp_path: Path) -> None:
        case = reviewed.case
        case.client.put(f"{case.world.url}/reviews/plan", headers=case.world.prosecutor.headers,
                        json={"offsets_days": [90], "unannounced": {
                            "count": 2, "window_from_days": 10, "window_to_days": 20}})
        reviewed.tick(reviewed.anchor + DAY)
        # One opens; the plan then changes, cancelling (and revealing) the other.
        first = min((x for x in reviewed.reviews() if x.kind == "unannounced"),
                    key=lambda x: x.due_at)
        reviewed.tick(first.due_at)
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers, json={"offsets_days": [90]})
        assert r.status_code == 200, r.text
        [(_, cancelled)] = [(i, b) for i, b in reviewed.events("cancelled")
                            if b["kind"] == "unannounced"]
        committed = {b["reviewId"]: b["commitment"] for _, b in reviewed.events("committed")}
        assert commitment.verify(committed[cancelled["reviewId"]], cancelled["dueAt"],
                                 cancelled["salt"])
        reviewed.tick(first.due_at + WINDOW)
        reviewed.env.clock.at = first.due_at + WINDOW
        logged = Logged(case, tmp_path)
        assert "review_no_response" in logged.assert_replays()["reasons"]
        # A reveal naming another instant than the one committed to is refused.
        forged = [ReplayEvent(index=e.index, type=e.type, body={
            **e.body, "dueAt": "2026-12-31T00:00:00Z"})
            if e.type == "review" and e.body.get("action") == "opened" else e
            for e in logged.events]
        with pytest.raises(ReplayError, match="do not open its commitment"):
            logged.replay(forged)
