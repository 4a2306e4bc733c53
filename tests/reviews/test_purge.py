"""Retention of the service's own data: a case closed for the retention period loses its
item rows, pseudonyms and salts; the log's commitments stay and the log still verifies;
the verdict is the last signed one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from deletion_audit.bundles.rederive import case_events
from deletion_audit.cli import main
from deletion_audit.config import Settings
from deletion_audit.core.leaves import Disclosure, decode_leaf, disclosure_of
from deletion_audit.models import (
    Case,
    CasePurge,
    DeletedItem,
    Event,
    LogLeaf,
    Manifest,
    ManifestItem,
    ScanItem,
    ScanRecord,
)
from deletion_audit.scheduling.tick import TickReport, tick
from deletion_audit.verdicts.recording import mark_changed
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.reviews.conftest import DAY, Reviewed
from tests.reviews.test_closure import close
from tests.reviews.test_reviews import to_monitoring

RETENTION = timedelta(days=Settings().case_data_retention_days)


def purge_tick(reviewed: Reviewed, at: datetime) -> TickReport:
    # The app's clock stays put: people's tokens hold for the reads that follow.
    env = reviewed.env
    return tick(env.db, service_key=env.ctx.keys.service_key, now=at, retention=RETENTION)


def item_counts(reviewed: Reviewed) -> dict[str, int]:
    case_id = reviewed.case.world.case_id
    with reviewed.env.db.read() as session:
        def count(model: Any, *where: Any) -> int:
            return int(session.execute(
                select(func.count()).select_from(model).where(*where)).scalar_one())
        return {
            "manifest": count(ManifestItem, ManifestItem.manifest_id.in_(
                select(Manifest.id).where(Manifest.case_id == case_id))),
            "scan": count(ScanItem, ScanItem.scan_pk.in_(
                select(ScanRecord.id).where(ScanRecord.case_id == case_id))),
            "deleted": count(DeletedItem, DeletedItem.case_id == case_id),
        }


def case_event_rows(reviewed: Reviewed) -> list[tuple[str, dict[str, Any], bytes | None]]:
    with reviewed.env.db.read() as session:
        return [(t, dict(b), s) for t, b, s in session.execute(
            select(Event.type, Event.body, Event.salt)
            .where(case_events(reviewed.case.world.case_id)).order_by(Event.id))]


def closed_case(reviewed: Reviewed) -> datetime:
    reviewed.tick(reviewed.anchor + DAY)
    to_monitoring(reviewed)
    close(reviewed)
    with reviewed.env.db.read() as session:
        closed_at = session.get_one(Case, reviewed.case.world.case_id).status_changed_at
    assert closed_at is not None
    return closed_at


def test_the_default_retention_is_three_years() -> None:
    assert RETENTION >= timedelta(days=3 * 365)


class TestPurge:
    def test_after_the_retention_period_the_items_pseudonyms_and_salts_go(
            self, reviewed: Reviewed) -> None:
        case = reviewed.case
        closed_at = closed_case(reviewed)
        before = item_counts(reviewed)
        assert before["manifest"] == 6
        assert before["scan"] > 0
        assert before["deleted"] > 0
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.prosecutor.headers)
        assert r.status_code == 200, r.text
        verdict = r.json()
        events_before = case_event_rows(reviewed)
        subjects = [b for t, b, _ in events_before if t == "manifest"]
        assert subjects
        # A day short of the period: nothing.
        assert purge_tick(reviewed, closed_at + RETENTION - DAY).purged == []
        assert item_counts(reviewed) == before
        report = purge_tick(reviewed, closed_at + RETENTION)
        assert report.purged == [case.world.case_id]
        assert item_counts(reviewed) == {"manifest": 0, "scan": 0, "deleted": 0}
        after = case_event_rows(reviewed)
        restricted = [(t, b, s) for t, b, s in after
                      if disclosure_of(t) is Disclosure.RESTRICTED]
        purged = [b for t, b, _ in restricted if b.get("action") != "purged"]
        assert len(purged) == len(restricted) - 1
        assert all(b["purged"] is True for b in purged)
        assert all(set(b) <= {"caseId", "case", "action", "at", "purged"} for b in purged)
        [(_, event, salt)] = [(t, b, s) for t, b, s in restricted
                              if b.get("action") == "purged"]
        assert salt is not None  # the purge's own event stays openable
        assert (event["manifestItems"], event["scanItems"], event["deletedItems"]) == (
            before["manifest"], before["scan"], before["deleted"])
        assert all(s is None for t, b, s in restricted if b.get("action") != "purged")
        # Public events stay whole.
        public_before = [(t, b) for t, b, _ in events_before
                         if disclosure_of(t) is Disclosure.PUBLIC]
        assert {t for t, _ in public_before} >= {"key-registration", "key-revocation",
                                                 "verdict"}
        assert [(t, b) for t, b, _ in after
                if disclosure_of(t) is Disclosure.PUBLIC] == public_before
        # The leaves stay: every event's leaf still decodes (restricted: its commitment).
        reviewed.env.integrate()
        with reviewed.env.db.read() as session:
            leaves = session.execute(select(LogLeaf.data).join(
                Event, Event.leaf_hash == LogLeaf.leaf_hash).where(
                case_events(case.world.case_id))).scalars().all()
            assert len(leaves) == len(after)
            assert sum(decode_leaf(bytes(d)).commitment is not None for d in leaves) == len(
                restricted)
        # The verdict is the last signed one, not stale, not recomputed.
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.prosecutor.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["envelope"], r.json()["stale"]) == (
            verdict["version"], verdict["envelope"], False)
        # Done once.
        assert purge_tick(reviewed, closed_at + 2 * RETENTION).purged == []
        with reviewed.env.db.read() as session:
            assert session.execute(select(func.count()).select_from(CasePurge)).scalar_one() == 1

    def test_the_log_still_verifies_after_the_purge(self, reviewed: Reviewed) -> None:
        closed_at = closed_case(reviewed)
        env = reviewed.env
        env.integrate()
        assert purge_tick(reviewed, closed_at + RETENTION).purged == [
            reviewed.case.world.case_id]
        env.integrate()
        result = CliRunner().invoke(main, ["log", "verify", "--db", env.settings.database_url])
        assert result.exit_code == 0, result.output
        assert "log intact" in result.output

    def test_a_reopened_case_is_not_purged(self, reviewed: Reviewed) -> None:
        case = reviewed.case
        closed_at = closed_case(reviewed)
        r = case.client.post(f"{case.world.url}/status", headers=case.world.prosecutor.headers,
                             json={"status": "remediating", "reason": "data came back"})
        assert r.status_code == 200, r.text
        assert purge_tick(reviewed, closed_at + 2 * RETENTION).purged == []
        assert item_counts(reviewed)["manifest"] == 6

    def test_after_the_purge_nothing_recomputes_the_verdict_and_export_is_refused(
            self, reviewed: Reviewed) -> None:
        case = reviewed.case
        env = reviewed.env
        closed_at = closed_case(reviewed)
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.prosecutor.headers)
        version = r.json()["version"]
        assert purge_tick(reviewed, closed_at + RETENTION).purged == [case.world.case_id]
        # An input event of the case after the purge (a mark) asks for a new verdict...
        with env.db.write() as session:
            mark_changed(session, case_id=case.world.case_id, now=env.clock.now())
        env.clock.at = env.clock.at + timedelta(minutes=1)
        recompute_verdicts(env.db, keys=env.ctx.keys, clock=env.clock)
        # ... and gets the last signed one: no version computed from rows that are gone.
        r = case.client.get(f"{case.world.url}/verdict", headers=case.world.prosecutor.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["stale"]) == (version, False)
        r = case.client.get(f"{case.world.url}/export", params={"tier": "court"},
                            headers=case.world.prosecutor.headers)
        assert r.status_code == 409, r.text
        assert "retention period" in r.json()["message"]

    def test_two_instances_ticking_at_once_purge_once(self, reviewed: Reviewed) -> None:
        closed_at = closed_case(reviewed)
        barrier = threading.Barrier(2)

        def run() -> list[int]:
            barrier.wait()
            return purge_tick(reviewed, closed_at + RETENTION).purged

        with ThreadPoolExecutor(2) as pool:
            results = [f.result() for f in [pool.submit(run) for _ in range(2)]]
        assert sorted(results) == [[], [reviewed.case.world.case_id]]
        purges = [b for t, b, _ in case_event_rows(reviewed)
                  if t == "case" and b.get("action") == "purged"]
        assert len(purges) == 1
