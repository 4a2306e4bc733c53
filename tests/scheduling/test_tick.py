"""``tick(now)`` with the domain clock moved by passing ``now``: agent liveness (late, dark,
once per episode), obligation deadlines (overdue after the verdict says so), escalation
steps that stop when the finding no longer stands — on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deletion_audit.clock import FixedClock
from deletion_audit.core import dsse
from deletion_audit.core.predicates import JudgmentPredicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.hosts.service import record_heartbeat
from deletion_audit.models import Agent, Escalation, Event, Judgment, OutboxMessage
from deletion_audit.notifications import service as notifications
from deletion_audit.scheduling.tick import TickReport, tick
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.conftest import T0
from tests.support.log import LogEnv
from tests.support.world import World, add_agent

# Served 2026-02-20, two months to reply: due at the end of 2026-04-20 (a Monday), Beijing.
REPLY = {"start_event": "检察建议书送达", "served_on": "2026-02-20", "preset": "reply-2-months"}
DUE = datetime.fromisoformat("2026-04-20T16:00:00+00:00")


def run(env: LogEnv, at: datetime) -> TickReport:
    return tick(env.db, service_key=env.ctx.keys.service_key, now=at)


def judgments(env: LogEnv) -> list[Judgment]:
    with env.db.read() as session:
        return list(session.execute(select(Judgment).order_by(Judgment.id)).scalars())


def verified_predicate(env: LogEnv, row: Judgment) -> JudgmentPredicate:
    """The stored envelope verifies with the service key and carries the finding."""
    verified = dsse.verify(dsse.from_json(row.envelope),
                           [env.ctx.keys.service_key.public_key()])
    statement = parse_statement(verified.payload)
    return JudgmentPredicate.model_validate(dict(statement.predicate))


def add_email(env: LogEnv, world: World, address: str, *, step: int = 0,
              after_hours: int = 0, role: str = "company_officer") -> None:
    with env.db.write() as session:
        notifications.add_recipient(
            session, case_id=world.case_id, role=role, channel="email", address=address,
            step=step, after_hours=after_hours, created_by=None, development=False,
            now=env.clock.now())


def outbox(env: LogEnv) -> list[tuple[str, str, int]]:
    with env.db.read() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        return [(r.payload["type"], r.subject, r.payload["step"]) for r in rows]


class TestLiveness:
    def test_late_after_three_intervals_dark_after_five(self, env: LogEnv,
                                                        world: World) -> None:
        public_id = add_agent(world)  # enrolled at T0, heartbeat every 300 s
        assert run(env, T0 + timedelta(seconds=899)).judgments == []
        late = run(env, T0 + timedelta(minutes=15))
        assert [e.split(":")[0] for e in late.judgments] == ["late"]
        assert run(env, T0 + timedelta(minutes=24)).judgments == []
        dark = run(env, T0 + timedelta(minutes=25))
        assert [e.split(":")[0] for e in dark.judgments] == ["dark"]
        rows = judgments(env)
        assert [r.finding for r in rows] == ["late", "dark"]
        predicate = verified_predicate(env, rows[1])
        assert (predicate.finding, predicate.agent_id, predicate.case_id) == (
            "dark", public_id, str(world.case_id))
        assert predicate.judged_at == T0 + timedelta(minutes=25)
        with env.db.read() as session:
            logged = session.execute(select(func.count()).select_from(Event).where(
                Event.type == "judgment")).scalar_one()
        assert logged == 2

    def test_a_late_tick_judges_both_at_once_and_a_repeat_nothing(
            self, env: LogEnv, world: World) -> None:
        add_agent(world)
        first = run(env, T0 + timedelta(days=30))
        assert sorted(e.split(":")[0] for e in first.judgments) == ["dark", "late"]
        assert run(env, T0 + timedelta(days=30)).judgments == []
        assert run(env, T0 + timedelta(days=31)).judgments == []
        assert len(judgments(env)) == 2

    def test_a_heartbeat_starts_a_new_episode(self, env: LogEnv, world: World) -> None:
        add_agent(world)
        run(env, T0 + timedelta(minutes=16))
        with env.db.write() as session:
            agent_id = session.execute(select(Agent.id)).scalar_one()
            record_heartbeat(session, agent_id=agent_id, report={},
                             now=T0 + timedelta(minutes=20))
        assert run(env, T0 + timedelta(minutes=30)).judgments == []
        again = run(env, T0 + timedelta(minutes=35))
        assert [e.split(":")[0] for e in again.judgments] == ["late"]
        assert [r.since for r in judgments(env)] == [T0, T0 + timedelta(minutes=20)]

    def test_the_servers_interval_is_each_agents_own(self, env: LogEnv,
                                                     world: World) -> None:
        add_agent(world)
        with env.db.write() as session:
            session.execute(Agent.__table__.update().values(heartbeat_seconds=3600))
        assert run(env, T0 + timedelta(hours=2, minutes=59)).judgments == []
        assert len(run(env, T0 + timedelta(hours=3)).judgments) == 1

    def test_revoked_agents_are_not_judged(self, env: LogEnv, world: World) -> None:
        from deletion_audit.models import AgentStatus

        add_agent(world, status=AgentStatus.DECOMMISSIONED)
        assert run(env, T0 + timedelta(days=2)).judgments == []


def obligation(client: TestClient, world: World, **body: Any) -> int:
    r = client.post(f"{world.url}/obligations", headers=world.prosecutor.headers, json=body)
    assert r.status_code == 201, r.text
    oid: int = r.json()["id"]
    return oid


def recompute(env: LogEnv, at: datetime) -> list[int]:
    return recompute_verdicts(env.db, keys=env.ctx.keys, clock=FixedClock(at))


class TestDeadlines:
    def test_overdue_once_the_verdict_says_so(self, env: LogEnv, world: World,
                                              client: TestClient) -> None:
        oid = obligation(client, world, kind="document", title="整改回复", deadline=REPLY)
        recompute(env, T0 + timedelta(minutes=1))
        assert run(env, DUE - timedelta(seconds=1)).judgments == []
        # Due, but the latest verdict predates the due instant: the verdict job goes first.
        assert run(env, DUE + timedelta(seconds=1)).judgments == []
        assert recompute(env, DUE + timedelta(seconds=2)) == [world.case_id]
        report = run(env, DUE + timedelta(seconds=3))
        assert report.judgments == [f"overdue:obligation:{oid}:2026-04-20T16:00:00Z"]
        assert run(env, DUE + timedelta(days=3)).judgments == []
        [row] = judgments(env)
        predicate = verified_predicate(env, row)
        assert (predicate.finding, predicate.obligation_id) == ("overdue", str(oid))
        assert row.since == DUE

    def test_a_waived_obligation_is_not_overdue(self, env: LogEnv, world: World,
                                                client: TestClient) -> None:
        oid = obligation(client, world, kind="document", title="整改回复", deadline=REPLY)
        r = client.post(f"{world.url}/obligations/{oid}/waive", headers=world.prosecutor.headers,
                        json={"reason": "案件调解结案"})
        assert r.status_code == 200, r.text
        recompute(env, DUE + timedelta(minutes=1))
        assert run(env, DUE + timedelta(minutes=2)).judgments == []


class TestEscalation:
    def test_step_zero_at_once_later_steps_if_the_finding_stands(
            self, env: LogEnv, world: World) -> None:
        add_email(env, world, "officer@company.example")
        add_email(env, world, "prosecutor@procuratorate.example", step=1, after_hours=2,
                  role="prosecutor")
        add_agent(world)
        run(env, T0 + timedelta(minutes=15))
        [(kind, subject, step)] = outbox(env)
        assert (kind, step) == ("judgment.late", 0)
        assert subject.startswith("【迟报】")
        assert "Late agent" in subject
        # Two hours later the agent is still silent: the prosecutor is told; once. The
        # tick is late, so it also judges the agent dark, whose step comes 2 h after that.
        report = run(env, T0 + timedelta(hours=2, minutes=15))
        assert len(report.escalations_sent) == 1
        assert [e.split(":")[0] for e in report.judgments] == ["dark"]
        assert run(env, T0 + timedelta(hours=3)).escalations_sent == []
        assert len(run(env, T0 + timedelta(hours=4, minutes=15)).escalations_sent) == 1
        kinds = [(kind, st) for kind, _, st in outbox(env)]
        assert sorted(kinds) == [("judgment.dark", 0), ("judgment.dark", 1),
                                 ("judgment.late", 0), ("judgment.late", 1)]
        steps = [s for _, s, st in outbox(env) if st == 1]
        assert all(s.startswith("【第 1 级提醒】") for s in steps)

    def test_a_step_whose_finding_ended_is_not_sent(self, env: LogEnv, world: World) -> None:
        add_email(env, world, "prosecutor@procuratorate.example", step=1, after_hours=2,
                  role="prosecutor")
        add_agent(world)
        run(env, T0 + timedelta(minutes=15))
        with env.db.write() as session:
            agent_id = session.execute(select(Agent.id)).scalar_one()
            record_heartbeat(session, agent_id=agent_id, report={},
                             now=T0 + timedelta(hours=2, minutes=10))
        report = run(env, T0 + timedelta(hours=2, minutes=15))
        assert report.escalations_sent == []
        assert len(report.escalations_resolved) == 1
        assert outbox(env) == []
        with env.db.read() as session:
            [step] = session.execute(select(Escalation)).scalars()
        assert step.outcome == "resolved"


class TestOverdueEscalation:
    def _overdue(self, env: LogEnv, world: World, client: TestClient) -> int:
        add_email(env, world, "prosecutor@procuratorate.example", step=1, after_hours=24,
                  role="prosecutor")
        oid = obligation(client, world, kind="document", title="整改回复", deadline=REPLY)
        recompute(env, DUE + timedelta(seconds=1))
        assert len(run(env, DUE + timedelta(seconds=2)).judgments) == 1
        assert outbox(env) == []  # nobody at step 0
        return oid

    def test_sent_while_still_overdue(self, env: LogEnv, world: World,
                                      client: TestClient) -> None:
        self._overdue(env, world, client)
        assert run(env, DUE + timedelta(hours=23)).escalations_sent == []
        assert len(run(env, DUE + timedelta(hours=25)).escalations_sent) == 1
        [(kind, subject, step)] = outbox(env)
        assert (kind, step) == ("judgment.overdue", 1)
        assert "义务「整改回复」已逾期" in subject

    def test_resolved_once_waived(self, env: LogEnv, world: World,
                                  client: TestClient) -> None:
        oid = self._overdue(env, world, client)
        r = client.post(f"{world.url}/obligations/{oid}/waive", headers=world.prosecutor.headers,
                        json={"reason": "检察机关同意延期"})
        assert r.status_code == 200, r.text
        report = run(env, DUE + timedelta(hours=25))
        assert report.escalations_sent == []
        assert len(report.escalations_resolved) == 1
        assert outbox(env) == []
