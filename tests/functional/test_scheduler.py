"""``deletion-audit scheduler`` as real processes: it runs the jobs for a few seconds and
stops cleanly; a message written but not yet sent when its process is killed is sent
once by the next; two processes on PostgreSQL, the leader killed, the standby takes over
and every effect happens once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from deletion_audit.clock import FixedClock
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.models import Agent, Event, Judgment, LogLeaf, OutboxMessage
from deletion_audit.notifications import service as notifications
from deletion_audit.scheduling import lease
from tests.conftest import T0
from tests.support.log import LogEnv, make_log_env
from tests.support.receivers import SECRET, smtp_server, wait_until, webhook_receiver
from tests.support.world import World, add_agent, make_world

CLI = [sys.executable, "-m", "deletion_audit"]


class Scheduler:
    def __init__(self, env: LogEnv, cwd: Path, name: str, **settings: str) -> None:
        variables = {**os.environ, "DELETION_AUDIT_ENVIRONMENT": "development",
                     "DELETION_AUDIT_TICK_INTERVAL_SECONDS": "0.2",
                     "DELETION_AUDIT_SEND_INTERVAL_SECONDS": "0.2",
                     "DELETION_AUDIT_SCHEDULER_LEASE_SECONDS": "1.5",
                     **{f"DELETION_AUDIT_{k.upper()}": v for k, v in settings.items()}}
        self.log = cwd / f"{name}.log"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [*CLI, "scheduler", "--data-dir", str(env.settings.data_dir),
                 "--db", env.db.url], cwd=cwd, env=variables, stdout=subprocess.PIPE,
                stderr=err, text=True)
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().strip()
        assert self.first_line.startswith("deletion-audit scheduler"), self.log.read_text()
        self.holder = self.first_line.split()[2]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
            finally:
                self._close()
        self._close()
        return self.proc.returncode


@pytest.fixture
def started() -> Iterator[list[Scheduler]]:
    processes: list[Scheduler] = []
    yield processes
    for p in processes:
        if p.proc.poll() is None:
            p.kill()


def count(env: LogEnv, query: object) -> int:
    with env.db.read() as session:
        return int(session.execute(query).scalar_one())  # type: ignore[call-overload]


def add_webhook(env: LogEnv, world: World, url: str) -> None:
    with env.db.write() as session:
        notifications.add_recipient(session, case_id=world.case_id, role="prosecutor",
                                    channel="webhook", address=url, secret=SECRET,
                                    created_by=None, development=True, now=env.clock.now())


def sent_ids(env: LogEnv) -> set[str]:
    with env.db.read() as session:
        return set(session.execute(select(OutboxMessage.message_id).where(
            OutboxMessage.sent_at.is_not(None))).scalars())


class TestSchedulerProcess:
    def test_runs_the_jobs_and_stops_cleanly(self, env: LogEnv, world: World,
                                             tmp_path: Path,
                                             started: list[Scheduler]) -> None:
        # Enrolled at T0 and silent since: on the real clock it is late and dark by now.
        add_agent(world)
        with webhook_receiver() as (url, received):
            add_webhook(env, world, url)
            process = Scheduler(env, tmp_path, "one")
            started.append(process)
            assert process.first_line.endswith("leading")
            wait_until(lambda: len(set(received.ids())) == 2, 30, "two notifications")
            wait_until(lambda: count(env, select(func.count()).select_from(LogLeaf).where(
                LogLeaf.idx.is_(None))) == 0, 30, "the log's integration")
            assert process.stop() == 0
        findings = sorted(r.payload["type"] for r in _outbox(env))
        assert findings == ["judgment.dark", "judgment.late"]
        assert set(received.ids()) == sent_ids(env)
        # A clean stop hands the lease over at once.
        assert lease.current_holder(env.db, now=datetime.now(UTC)) is None

    def test_a_message_written_before_a_crash_is_sent_once_after(
            self, env: LogEnv, world: World, tmp_path: Path,
            started: list[Scheduler]) -> None:
        add_agent(world)
        with env.db.write() as session:
            notifications.add_recipient(
                session, case_id=world.case_id, role="prosecutor", channel="email",
                address="prosecutor@procuratorate.example", created_by=None,
                development=True, now=env.clock.now())
        with smtp_server(tmp_path) as smtp:
            smtp_settings = {"smtp_host": "127.0.0.1", "smtp_port": str(smtp.port)}
            # This one writes (tick) but its sender would only run in an hour: killed first.
            writer = Scheduler(env, tmp_path, "writer", send_interval_seconds="3600",
                               **smtp_settings)
            started.append(writer)
            wait_until(lambda: len(_outbox(env)) == 2, 30, "the messages to be written")
            writer.kill()
            queued = {r.message_id: r.attempts for r in _outbox(env)}
            assert set(queued.values()) == {0}
            assert smtp.messages() == []
            sender = Scheduler(env, tmp_path, "sender", **smtp_settings)
            started.append(sender)
            wait_until(lambda: sent_ids(env) == set(queued), 30, "the messages to be sent")
            assert sender.stop() == 0
            ids = sorted(m["Message-ID"].strip("<>").split("@")[0] for m in smtp.messages())
        assert ids == sorted(queued)


class TestAtLeastOnce:
    def test_a_delivery_unconfirmed_when_its_sender_died_is_repeated_under_its_id(
            self, env: LogEnv, world: World, tmp_path: Path,
            started: list[Scheduler]) -> None:
        add_agent(world)  # silent since T0: late and dark at the first tick
        hold = threading.Event()
        with webhook_receiver(hold=hold) as (url, received):
            add_webhook(env, world, url)
            first = Scheduler(env, tmp_path, "first")
            started.append(first)
            # The receiver has the first message; its sender dies before the answer.
            wait_until(lambda: len(received.ids()) == 1, 30, "the first delivery")
            first.kill()
            hold.set()
            [unconfirmed] = received.ids()
            assert sent_ids(env) == set()
            second = Scheduler(env, tmp_path, "second")
            started.append(second)
            wait_until(lambda: len(sent_ids(env)) == 2, 30, "both messages to be sent")
            assert second.stop() == 0
            ids = received.ids()
        # The same message again, under the same id: a receiver keyed on it drops it.
        assert ids.count(unconfirmed) == 2
        assert set(ids) == sent_ids(env)
        assert len(ids) == 3


def _outbox(env: LogEnv) -> list[OutboxMessage]:
    with env.db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


AGENTS = 6


def spread_heartbeats(env: LogEnv, start: datetime) -> None:
    with env.db.write() as session:
        ids = session.execute(select(Agent.id).order_by(Agent.id)).scalars().all()
        for i, agent_id in enumerate(ids):
            session.execute(update(Agent).where(Agent.id == agent_id).values(
                heartbeat_seconds=1, last_seen_at=start + timedelta(seconds=0.8 * i)))


class TestFailover:
    def test_the_standby_takes_over_and_every_effect_happens_once(
            self, tmp_path: Path, pg_db_url: str, started: list[Scheduler]) -> None:
        env = make_log_env(tmp_path, pg_db_url, FixedClock(T0))
        try:
            world = make_world(env)
            for _ in range(AGENTS):
                add_agent(world)
            with webhook_receiver() as (url, received):
                add_webhook(env, world, url)
                # Nobody is silent until both processes run: heartbeats "in an hour".
                spread_heartbeats(env, datetime.now(UTC) + timedelta(hours=1))
                leader = Scheduler(env, tmp_path, "a")
                started.append(leader)
                standby = Scheduler(env, tmp_path, "b")
                started.append(standby)
                # On the real clock: agent i is late 3 s after its last heartbeat and dark
                # after 5 (an interval of 1 s); the heartbeats spread the findings over
                # about ten seconds, through the leader's death.
                spread_heartbeats(env, datetime.now(UTC))
                assert leader.first_line.endswith("leading")
                assert standby.first_line.endswith("standing by")
                wait_until(lambda: count(env, select(func.count()).select_from(Judgment)) > 0,
                           30, "the leader's first judgment")
                leader.kill()
                done_before = count(env, select(func.count()).select_from(Judgment))
                assert done_before < 2 * AGENTS
                wait_until(lambda: count(env, select(func.count()).select_from(Judgment))
                           == 2 * AGENTS, 40, "every judgment")
                wait_until(lambda: len(sent_ids(env)) == 2 * AGENTS, 30, "every message")
                assert lease.current_holder(env.db, now=datetime.now(UTC)) == standby.holder
                assert standby.stop() == 0
            judged = count(env, select(func.count(func.distinct(Judgment.episode))))
            logged = count(env, select(func.count()).select_from(Event).where(
                Event.type == "judgment"))
            assert (judged, logged) == (2 * AGENTS, 2 * AGENTS)
            outbox = _outbox(env)
            assert len(outbox) == 2 * AGENTS
            # At least once, under one id each: a receiver that drops repeats sees each once.
            assert set(received.ids()) == {r.message_id for r in outbox}
            assert received.refused == []
        finally:
            env.db.dispose()


@pytest.mark.slow
class TestServeJobs:
    def test_serve_leads_by_default_and_not_with_no_jobs(self, tmp_path: Path) -> None:
        from tests.functional.test_serve import start_server, stop

        variables = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
        data = tmp_path / "data"
        quiet = start_server(["--data-dir", str(data), "--no-jobs"], variables, tmp_path)
        db = Database(Settings(data_dir=data).database_url)
        try:
            assert lease.current_holder(db, now=datetime.now(UTC)) is None
            stop(quiet)
            leading = start_server(["--data-dir", str(data)], variables, tmp_path)
            holder = lease.current_holder(db, now=datetime.now(UTC))
            assert holder is not None
            assert f":{leading.proc.pid}:" in holder
            stop(leading)
            # A clean stop releases the lease.
            assert lease.current_holder(db, now=datetime.now(UTC)) is None
        finally:
            db.dispose()


class TestSchedulerErrors:
    def test_a_database_not_at_the_schema_is_refused_in_one_line(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        out = subprocess.run([*CLI, "scheduler", "--data-dir", str(tmp_path), "--db", url],
                             capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 1
        [line] = out.stderr.strip().splitlines()
        assert "not at the current schema" in line
        assert "deletion-audit db upgrade" in line
