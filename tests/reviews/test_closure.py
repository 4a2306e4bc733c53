"""Closing a case: its active agents decommissioned, its reviews not yet opened cancelled,
each logged, in the status change's own transaction."""

from __future__ import annotations

import hashlib
import stat

from sqlalchemy import select

from deletion_audit.bundles.verify import Anchor, Exit, verify_bundle
from deletion_audit.cases.archive import Archiver
from deletion_audit.models import Agent, CaseArchive, Event
from deletion_audit.scheduling.tick import TickReport, tick
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


def archiver(reviewed: Reviewed) -> Archiver:
    env = reviewed.env
    return Archiver(keys=env.ctx.keys, settings=env.settings, clock=env.clock)


def archive_tick(reviewed: Reviewed) -> TickReport:
    env = reviewed.env
    return tick(env.db, service_key=env.ctx.keys.service_key, now=env.clock.now(),
                archiver=archiver(reviewed))


def archives(reviewed: Reviewed) -> list[CaseArchive]:
    with reviewed.env.db.read() as session:
        return list(session.execute(select(CaseArchive).order_by(CaseArchive.id)).scalars())


class TestArchive:
    def test_the_court_bundle_is_archived_by_the_tick_after_the_closure(
            self, reviewed: Reviewed) -> None:
        env = reviewed.env
        reviewed.tick(reviewed.anchor + DAY)
        to_monitoring(reviewed)
        close(reviewed)
        # Committed with the closure, not yet done: a process dying now loses nothing.
        [row] = archives(reviewed)
        assert (row.case_id, row.done_at, row.path) == (
            reviewed.case.world.case_id, None, None)
        report = archive_tick(reviewed)
        assert report.archived == [row.id]
        [row] = archives(reviewed)
        assert row.done_at is not None
        stamp = row.due_at.strftime("%Y%m%dT%H%M%SZ")
        assert row.path == f"archive/{row.case_id}/court-{stamp}.zip"
        path = env.settings.data_dir / row.path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp left
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        report = verify_bundle(path, Anchor(log_key=env.ctx.keys.verifier.vkey()))
        assert report.exit is Exit.VERIFIED, report.problems
        assert report.tier == "court"
        # The closure's events are in it: the agents' decommissioning.
        assert report.case_id == reviewed.case.world.case_id
        # A repeated tick does it once.
        assert archive_tick(reviewed).archived == []

    def test_a_tick_without_the_archiver_leaves_it_due(self, reviewed: Reviewed) -> None:
        reviewed.tick(reviewed.anchor + DAY)
        to_monitoring(reviewed)
        close(reviewed)
        assert reviewed.tick(reviewed.env.clock.now()).archived == []
        [row] = archives(reviewed)
        assert row.done_at is None
        assert archive_tick(reviewed).archived == [row.id]

    def test_a_failed_export_is_recorded_and_retried_by_the_next_tick(
            self, reviewed: Reviewed) -> None:
        env = reviewed.env
        reviewed.tick(reviewed.anchor + DAY)
        to_monitoring(reviewed)
        close(reviewed)
        # The archive directory cannot be made: a file stands where it goes.
        blocker = env.settings.data_dir / "archive"
        blocker.write_bytes(b"")
        assert archive_tick(reviewed).archived == []
        [row] = archives(reviewed)
        assert row.done_at is None
        assert row.attempts == 1
        assert row.last_error
        blocker.unlink()
        assert archive_tick(reviewed).archived == [row.id]
        [row] = archives(reviewed)
        assert (row.attempts, row.last_error) == (2, None)
        assert (env.settings.data_dir / str(row.path)).is_file()

    def test_an_unannounced_review_cancelled_by_the_closure_is_revealed_and_the_archive_verifies(
            self, reviewed: Reviewed) -> None:
        case = reviewed.case
        env = reviewed.env
        r = case.client.put(f"{case.world.url}/reviews/plan",
                            headers=case.world.prosecutor.headers,
                            json={"offsets_days": [200],
                                  "unannounced": {"count": 1, "window_from_days": 10,
                                                  "window_to_days": 20}})
        assert r.status_code == 200, r.text
        reviewed.tick(reviewed.anchor + DAY)
        [(_, committed)] = reviewed.events("committed")
        to_monitoring(reviewed)
        close(reviewed)
        cancelled = {int(b["reviewId"]): b for _, b in reviewed.events("cancelled")}
        secret = cancelled[int(committed["reviewId"])]
        assert secret["commitment"] == committed["commitment"]
        assert {"dueAt", "salt"} <= set(secret)
        [row] = archives(reviewed)
        assert archive_tick(reviewed).archived == [row.id]
        [row] = archives(reviewed)
        report = verify_bundle(env.settings.data_dir / str(row.path),
                               Anchor(log_key=env.ctx.keys.verifier.vkey()))
        assert report.exit is Exit.VERIFIED, report.problems
