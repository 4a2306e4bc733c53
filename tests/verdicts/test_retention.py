"""``retention`` rules checked at every scan: a scan of a covered scope whose age summary
shows a limited kind older than the rule allows breaches the obligation (logged, so the
verdict blocks and the replay derives it); a young one, another kind or another scope does
not — over HTTP, on both engines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deletion_audit.core.predicates import AgeSummary
from deletion_audit.models import Event, Obligation
from tests.scheduling.test_tick import add_email, judgments, outbox, run, verified_predicate
from tests.support.agents import declare_scope
from tests.verdicts.conftest import Case, reasons
from tests.verdicts.test_replay import replayed
from tests.verdicts.test_verdict import _obligation


def _rule(case: Case, **details: Any) -> int:
    return _obligation(case, kind="retention", title="人脸图像 24 小时内删除",
                       details={"max_age_hours": 24, **details})


def _ages(case: Case, **hours_by_kind: float) -> dict[str, AgeSummary]:
    now = case.env.clock.now()
    return {kind: AgeSummary(count=1, oldest=now - timedelta(hours=hours),
                             histogram={"under-7d" if hours >= 24 else "under-24h": 1})
            for kind, hours in hours_by_kind.items()}


def _clean(case: Case, **ages: float) -> None:
    case.scan(present=case.digests[:1])
    case.delete(case.digests[:1], minutes=1)
    case.scan(minutes=2, ages=_ages(case, **ages) if ages else None)


def _state(case: Case, oid: int) -> str:
    with case.env.db.read() as session:
        return session.get_one(Obligation, oid).state


class TestRetentionAtScan:
    def test_young_images_keep_the_rule_in_force(self, case: Case) -> None:
        oid = _rule(case, kinds=["image"], scope_ids=[case.scope["id"]])
        _clean(case, image=3, video=500)  # old videos are not what the rule limits
        assert _state(case, oid) == "in_force"
        assert case.verdict()["outcome"] == "verified"

    def test_an_image_beyond_the_limit_breaches_it(self, case: Case, tmp_path: Path) -> None:
        oid = _rule(case, kinds=["image"])
        _clean(case, image=30)
        assert _state(case, oid) == "breached"
        # The signed verdict is re-derived from the logged events alone.
        predicate = replayed(case, tmp_path)
        assert (predicate["outcome"], predicate["reasons"]) == (
            "not_verified", ["obligation_breached"])
        with case.env.db.read() as session:
            bodies = [e.body for e in session.execute(select(Event).where(
                Event.type == "obligation").order_by(Event.id)).scalars()]
        breach = bodies[-1]
        assert (breach["action"], breach["from"], breach["to"]) == (
            "state", "in_force", "breached")
        assert "image: oldest written" in breach["reason"]
        assert "beyond 24 h" in breach["reason"]

    def test_sql_rows_are_held_to_the_rule_whatever_its_kinds(self, case: Case) -> None:
        oid = _rule(case, kinds=["image"])
        _clean(case, row=25)
        assert _state(case, oid) == "breached"

    def test_a_rule_on_another_scope_is_not_checked(self, case: Case) -> None:
        other = declare_scope(case.client, case.world, name="backup")
        oid = _rule(case, scope_ids=[other["id"]])
        _clean(case, image=100)
        assert _state(case, oid) == "in_force"

    def test_the_agent_is_told_which_scopes_report_ages(self, case: Case) -> None:
        def scopes() -> dict[int, dict[str, Any]]:
            r = case.agent.get("/api/v1/agents/scopes")
            assert r.status_code == 200, r.text
            return {s["id"]: s for s in r.json()["scopes"]}

        assert scopes()[case.scope["id"]]["ages"] is False
        _rule(case)
        assert scopes()[case.scope["id"]]["ages"] is True


class TestBreachJudgment:
    def test_the_tick_signs_each_breach_once_and_escalates_while_it_stands(
        self, case: Case
    ) -> None:
        env, world = case.env, case.world
        add_email(env, world, "officer@company.example")
        add_email(env, world, "prosecutor@procuratorate.example", step=1, after_hours=2,
                  role="prosecutor")
        oid = _rule(case, kinds=["image"])
        _clean(case, image=30)
        now = env.clock.now()
        report = run(env, now)
        episode = f"breached:obligation:{oid}:"
        assert [e.split(":")[:3] for e in report.judgments] == [episode.split(":")[:3]]
        (row,) = [j for j in judgments(env) if j.finding == "breached"]
        assert row.obligation_id == oid
        predicate = verified_predicate(env, row)
        assert (predicate.finding, predicate.obligation_id) == ("breached", str(oid))
        assert predicate.detail.startswith("retention breached ")
        # A repeated or late tick judges nothing again; the next step goes out once due.
        assert run(env, now + timedelta(minutes=5)).judgments == []
        subjects = [subject for _, subject, _ in outbox(env)]
        assert any("违反义务" in s and "Obligation breached" in s for s in subjects)
        assert len(run(env, now + timedelta(hours=3)).escalations_sent) == 1

    def test_a_rule_set_back_in_force_resolves_the_next_step(self, case: Case) -> None:
        env, world = case.env, case.world
        add_email(env, world, "prosecutor@procuratorate.example", step=1, after_hours=2,
                  role="prosecutor")
        oid = _rule(case)
        _clean(case, image=30)
        now = env.clock.now()
        assert len(run(env, now).judgments) == 1
        r = case.client.post(f"{world.url}/obligations/{oid}/state",
                             headers=world.prosecutor.headers,
                             json={"state": "in_force", "reason": "已删除超期图像"})
        assert r.status_code == 200, r.text
        report = run(env, now + timedelta(hours=3))
        assert (report.escalations_sent, len(report.escalations_resolved)) == ([], 1)


class TestRetentionWithoutAges:
    """Regression: a scan of a ruled scope without an age summary (an older agent, or one
    that skipped it) passed silently; the rule is now unchecked there until a later scan
    of the scope carries ages."""

    def test_a_scan_without_ages_leaves_the_rule_unchecked_for_its_scope(
        self, case: Case, tmp_path: Path
    ) -> None:
        oid = _rule(case, kinds=["image"])
        _clean(case)
        assert _state(case, oid) == "in_force"
        verdict = case.verdict()
        assert verdict["outcome"] == "insufficient_evidence"
        (reason,) = [r for r in verdict["report"]["reasons"]
                     if r["code"] == "retention_unchecked"]
        assert reason["scope_ids"] == [case.scope["id"]]
        assert (reasons(verdict), reason["zh"] != "") == ({"retention_unchecked"}, True)
        predicate = replayed(case, tmp_path)
        assert (predicate["outcome"], predicate["reasons"]) == (
            "insufficient_evidence", ["retention_unchecked"])

    def test_a_later_scan_with_ages_checks_it_again(self, case: Case, tmp_path: Path) -> None:
        _rule(case, kinds=["image"])
        _clean(case)
        assert "retention_unchecked" in reasons(case.verdict())
        case.scan(minutes=3, ages=_ages(case, image=2))
        assert case.verdict()["outcome"] == "verified"
        assert replayed(case, tmp_path)["outcome"] == "verified"

    def test_an_earlier_scan_with_ages_does_not_cover_a_later_one_without(
        self, case: Case
    ) -> None:
        _rule(case)
        _clean(case, image=2)
        assert case.verdict()["outcome"] == "verified"
        case.scan(minutes=3)
        assert reasons(case.verdict()) == {"retention_unchecked"}

    def test_a_scope_no_rule_covers_and_a_waived_rule_ask_for_no_ages(
        self, case: Case
    ) -> None:
        other = declare_scope(case.client, case.world, name="backup")
        _rule(case, scope_ids=[other["id"]])
        waived = _rule(case)
        r = case.client.post(f"{case.world.url}/obligations/{waived}/waive",
                             headers=case.world.prosecutor.headers,
                             json={"reason": "规则已由新协议替代"})
        assert r.status_code == 200, r.text
        _clean(case)
        assert "retention_unchecked" not in reasons(case.verdict())
