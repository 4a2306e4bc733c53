"""A verdict is ``as_of`` a log size that covers every event it was computed from: the job
integrates and computes in one snapshot, so an offline replay of the events below that size
reaches the same verdict — even when the integrator has not run since the statements came."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.bundles.service import _uncovered
from deletion_audit.log import service as log
from deletion_audit.models import LogLeaf, Verdict
from deletion_audit.verdicts import service, tasks
from deletion_audit.verdicts.tasks import _one_snapshot, integrate_all
from tests.support.log import LogEnv
from tests.verdicts.conftest import Case
from tests.verdicts.test_replay import replayed


def _pending(env: LogEnv) -> int:
    with env.db.read() as session:
        return int(session.execute(select(func.count()).select_from(LogLeaf)
                                   .where(LogLeaf.idx.is_(None))).scalar_one())


class TestAsOf:
    def test_the_signed_size_covers_statements_not_yet_integrated(
        self, case: Case, tmp_path: Path
    ) -> None:
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        assert _pending(case.env) > 0  # nothing integrated them: no integrator runs here
        assert case.recompute()
        with case.env.db.read() as session:
            verdict = session.execute(select(Verdict).order_by(Verdict.id.desc())
                                      .limit(1)).scalar_one()
            assert verdict.outcome == "verified"
            assert not _uncovered(session, verdict.case_id, verdict.as_of_log_size)
        # Replayed from the events below its size alone, the verdict is the one signed.
        assert replayed(case, tmp_path)["outcome"] == "verified"

    def test_an_event_committed_meanwhile_waits_for_the_next_version(
        self, case: Case
    ) -> None:
        env = case.env
        if env.db.dialect != "postgresql":
            # SQLite has one writer: nothing can commit while the job's transaction runs.
            assert env.db.dialect == "sqlite"
            return
        case.scan(present=[])
        before = _pending(env)
        with env.db.write() as session:
            _one_snapshot(env.db, session)
            session.execute(select(func.count()).select_from(LogLeaf)).scalar_one()
            with env.db.write() as other:  # commits while the snapshot is open
                log.append_event(other, event_type="challenge", event={"meanwhile": True},
                                 now=env.clock.now())
            size = integrate_all(session, keys=env.ctx.keys, clock=env.clock)
        assert _pending(env) == 1  # the event committed meanwhile, not integrated
        with env.db.read() as session:
            assert size == log.current_size(session)
            assert session.execute(select(func.count()).select_from(LogLeaf)).scalar_one() \
                == size + 1
        assert before >= 1

    def test_on_sqlite_statements_are_stored_while_the_verdict_is_computed(
        self, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = case.env
        if env.db.dialect != "sqlite":
            return  # PostgreSQL: one REPEATABLE READ transaction, writers go on (above)
        case.scan(present=case.digests[:2])
        case.delete(case.digests[:2], minutes=1)
        case.scan(minutes=2)
        compute = tasks.compute_report

        def with_a_write_meanwhile(session: Session, **kwargs: Any) -> Any:
            # Were the write lock still held, this write would wait for it and time out.
            with env.db.write() as other:
                log.append_event(other, event_type="challenge", event={"meanwhile": True},
                                 now=env.clock.now())
            return compute(session, **kwargs)

        monkeypatch.setattr(tasks, "compute_report", with_a_write_meanwhile)
        monkeypatch.setattr(service, "compute_report", with_a_write_meanwhile)
        assert case.recompute()
        with env.db.read() as session:
            verdict = session.execute(select(Verdict).order_by(Verdict.id.desc())
                                      .limit(1)).scalar_one()
            leaves = session.execute(select(func.count()).select_from(LogLeaf)).scalar_one()
            assert verdict.outcome == "verified"
            assert not _uncovered(session, verdict.case_id, verdict.as_of_log_size)
        # The event written meanwhile (and the verdict's own) lie beyond its size.
        assert leaves >= verdict.as_of_log_size + 2
        assert replayed(case, tmp_path)["outcome"] == "verified"

