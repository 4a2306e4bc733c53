"""Retention of the service's own data: a case closed for the retention period loses its
item rows, pseudonyms and salts; the log's commitments stay and the log still verifies;
the verdict is the last signed one."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator
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
    Attestation,
    Base,
    Case,
    CaseArchive,
    CasePurge,
    DeletedItem,
    Event,
    LogLeaf,
    Manifest,
    ManifestItem,
    OnSiteSession,
    ScanItem,
    ScanRecord,
)
from deletion_audit.scheduling.tick import TickReport, tick
from deletion_audit.verdicts.recording import mark_changed
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.reviews.conftest import DAY, Reviewed
from tests.reviews.test_closure import archive_tick, archiver, close
from tests.reviews.test_reviews import to_monitoring
from tests.support.sessions import OnSite

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
        assert all(set(b) <= {"caseId", "case", "action", "at", "purged", "statementId",
                              "envelopeSha256"} for b in purged)
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


# -- completeness: no row or file keeps what the retention rule covers -----------------------

_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")


def _decoded(text: str) -> Iterator[bytes]:
    """Base64 runs in ``text``, decoded (DSSE payloads, envelopes inside JSON)."""
    for run in _B64_RUN.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(run + "=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue


def _forms(value: Any, depth: int = 0) -> Iterator[bytes]:
    """Every form a digest, pseudonym, salt or location could take inside ``value``."""
    if value is None or depth > 3:
        return
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        yield value
        yield value.hex().encode()
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        return
    yield text.encode()
    for raw in _decoded(text):
        yield from _forms(raw, depth + 1)


def _needles(reviewed: Reviewed) -> dict[str, set[bytes]]:
    """The case's item digests and pseudonyms (hex and raw), its salts (raw, hex, base64)
    and the locations forensics named."""
    entries = reviewed.case.entries
    with reviewed.env.db.read() as session:
        salts = {bytes(s) for s in session.execute(select(Event.salt).where(
            case_events(reviewed.case.world.case_id), Event.salt.is_not(None))).scalars()}
        salts |= {bytes(s) for s in session.execute(select(OnSiteSession.items_salt).where(
            OnSiteSession.items_salt.is_not(None))).scalars()}
    assert salts

    def hexed(values: set[str]) -> set[bytes]:
        return {v.encode() for v in values} | {bytes.fromhex(v) for v in values}

    return {
        "digest": hexed({e.digest for e in entries}),
        "pseudonym": hexed({e.subject for e in entries if e.subject}),
        "salt": salts | {s.hex().encode() for s in salts}
        | {base64.b64encode(s).rstrip(b"=") for s in salts},
        "location": {e.source.encode() for e in entries if e.source},
    }


def _holders(reviewed: Reviewed, needles: dict[str, set[bytes]]) -> set[tuple[str, str]]:
    """(table or file, what) for every row of every table and every file under the data
    directory holding one of the needles."""
    found: set[tuple[str, str]] = set()

    def check(where: str, values: Iterable[Any]) -> None:
        forms = [f for v in values for f in _forms(v)]
        for what, wanted in needles.items():
            if any(n in f for f in forms for n in wanted):
                found.add((where, what))

    with reviewed.env.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                check(table.name, row)
    for path in sorted(reviewed.env.settings.data_dir.rglob("*")):
        # The examiner's own signed manifest file, which the test wrote beside the data
        # directory's contents (tests/support/evidence.py), is not the service's.
        if not path.is_file() or path.name == "manifest.jsonl":
            continue
        name = path.relative_to(reviewed.env.settings.data_dir).as_posix()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                check(name, [bundle.read(m) for m in bundle.namelist()])
        else:
            check(name, [path.read_bytes()])
    return found


class TestPurgeLeavesNoTrace:
    def test_no_row_or_file_keeps_a_digest_pseudonym_salt_or_location(
            self, reviewed: Reviewed) -> None:
        case, env = reviewed.case, reviewed.env
        world = case.world
        # Everywhere else the case's items go: an on-site session's item lists, a refused
        # statement's envelope, a manifest upload's file, the archived court bundle.
        onsite = OnSite.start(case)
        sid = onsite.open()
        examiner_agent = onsite.enroll_examiner_agent(sid)
        onsite.challenge(sid)
        onsite.scan(examiner_agent, present=case.digests[:1])
        onsite.record(sid)
        chain = case._chain(None)
        fork = chain.agent.deletion(seq=chain.seq - 1, prev="e" * 64, scope=case.scope,
                                    digests=case.digests[2:4], deleted_at=env.clock.now())
        assert chain.agent.submit(chain.agent.sign_statement(fork)).status_code == 409
        r = case.client.post(f"{world.url}/manifests/uploads", headers=world.examiner.headers)
        assert r.status_code == 201, r.text
        r = case.client.put(f"{world.url}/manifests/uploads/{r.json()['id']}",
                            headers={**world.examiner.headers, "Upload-Offset": "0"},
                            content="\n".join(case.digests).encode())
        assert r.status_code == 200, r.text
        closed_at = closed_case(reviewed)
        assert archive_tick(reviewed).archived
        needles = _needles(reviewed)
        before = _holders(reviewed, needles)
        tables = {where for where, _ in before}
        # The search finds what it looks for: it can fail.
        assert {"manifest_items", "scan_items", "deleted_items", "attestations", "refusals",
                "onsite_sessions", "events", "scopes"} <= tables
        assert {what for _, what in before} == set(needles)
        assert any(w.startswith("archive/") for w in tables)
        assert any(w.startswith("uploads/") for w in tables)
        env.integrate()
        report = tick(env.db, service_key=env.ctx.keys.service_key,
                      now=closed_at + RETENTION, archiver=archiver(reviewed),
                      retention=RETENTION)
        assert report.purged == [world.case_id]
        assert _holders(reviewed, needles) == set()
        # What the commitments and the last signed verdict need stays.
        with env.db.read() as session:
            kept = session.execute(select(Attestation.statement_id, Attestation.leaf_hash)
                                   .where(Attestation.case_id == world.case_id)).all()
            archive = session.execute(select(CaseArchive)).scalar_one()
        assert kept
        assert all(len(sid) == 64 and len(leaf) == 32 for sid, leaf in kept)
        assert archive.sha256 is not None
        assert not (env.settings.data_dir / str(archive.path)).exists()
        restricted = [b for t, b, _ in case_event_rows(reviewed)
                      if t == "attestation" and disclosure_of(t) is Disclosure.RESTRICTED]
        assert restricted
        assert all(len(b["envelopeSha256"]) == 64 for b in restricted)
        r = case.client.get(f"{world.url}/export", params={"tier": "court"},
                            headers=world.prosecutor.headers)
        assert r.status_code == 409, r.text
        assert archive.sha256 in r.json()["message"]
        env.integrate()
        result = CliRunner().invoke(main, ["log", "verify", "--db", env.settings.database_url])
        assert result.exit_code == 0, result.output
        assert "log intact" in result.output
