"""Age summaries for scopes under a retention rule: per kind, from file mtimes, object
LastModified and a SQL scope's declared timestamp column, into the scan predicate."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from deletion_audit.core import keys
from deletion_audit.core.dsse import Envelope
from deletion_audit.core.predicates import AgeSummary, ScanCounts, ScanPredicate, parse_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit_agent.ages import AgeTally, kind_of
from deletion_audit_agent.config import DirectoryAccess, ObjectStoreAccess, SqlAccess
from deletion_audit_agent.scanning import tally
from deletion_audit_agent.sources import Throttle, open_source
from deletion_audit_agent.statements import Chain, ScanReport, scan_builders
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server

NO_LIMIT = Throttle(None)
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def hours_before(hours: float) -> float:
    return (AT - timedelta(hours=hours)).timestamp()


def ages_of(source: Any, at: datetime, kind: str | None = None) -> dict[str, AgeSummary]:
    ages = AgeTally(at, kind=kind)
    try:
        tally(source.scan(), lambda _d: False, b"k" * 32, ages=ages)
    finally:
        source.close()
    return ages.summary()


class TestAgeTally:
    def test_kinds_counts_oldest_and_buckets(self) -> None:
        ages = AgeTally(AT)
        for name, hours in [("a.jpg", 0.5), ("b.png", 30), ("c.JPG", 24 * 40),
                            ("v.mp4", 2), ("notes", 5)]:
            ages.add(name, hours_before(hours))
        ages.add("unknown-time.jpg", None)
        out = ages.summary()
        assert list(out) == ["image", "other", "video"]
        assert out["image"].count == 3
        assert out["image"].oldest == AT - timedelta(hours=24 * 40)
        assert out["image"].histogram == {"under-1h": 1, "under-7d": 1, "older": 1}
        assert out["video"].histogram == {"under-24h": 1}
        assert out["other"].count == 1

    def test_a_fixed_kind_and_a_future_time(self) -> None:
        ages = AgeTally(AT, kind="row")
        ages.add("[1,1]", hours_before(-1))  # written after the scan began: age 0
        assert ages.summary()["row"].histogram == {"under-1h": 1}

    def test_kind_of(self) -> None:
        assert (kind_of("/srv/x.jpeg"), kind_of("k/y.mov"), kind_of("z")) == (
            "image", "video", "other")


class TestPredicate:
    def predicate(self, **extra: Any) -> dict[str, Any]:
        return {"caseId": "1", "agentId": "agt_1", "seq": 0, "prev": None,
                "agentBuildDigest": "a" * 64, "scopeId": "3", "scopeSpecDigest": "b" * 64,
                "scanId": "scn_1", "part": 1, "last": True, "presentDigests": [],
                "coverage": "complete", "root": "c" * 64,
                "counts": {"objects": 0, "hashed": 0, "hashedBytes": 0, "present": 0},
                "startedAt": "2026-03-01T12:00:00Z", "finishedAt": "2026-03-01T12:01:00Z",
                **extra}

    def test_old_statements_keep_their_bytes(self) -> None:
        parsed = ScanPredicate.model_validate(self.predicate())
        assert "ages" not in parsed.to_predicate()

    def test_ages_round_trip(self) -> None:
        ages = {"image": {"count": 2, "oldest": "2026-02-01T00:00:00Z",
                          "histogram": {"under-1h": 1, "older": 1}}}
        parsed = ScanPredicate.model_validate(self.predicate(ages=ages))
        assert parsed.ages is not None
        assert parsed.ages["image"].count == 2
        assert parsed.to_predicate()["ages"] == ages

    @pytest.mark.parametrize("histogram", [{"under-1h": 1}, {"under-2h": 2}])
    def test_a_histogram_that_does_not_add_up_is_refused(self, histogram: Any) -> None:
        ages = {"image": {"count": 2, "oldest": "2026-02-01T00:00:00Z",
                          "histogram": histogram}}
        with pytest.raises(ValidationError):
            ScanPredicate.model_validate(self.predicate(ages=ages))

    def test_only_the_last_part_carries_ages(self) -> None:
        body = self.predicate(last=False, ages={}, coverage=None, root=None, counts=None)
        for key in ("coverage", "root", "counts"):
            del body[key]
        with pytest.raises(ValidationError, match="only the last part carries ages"):
            ScanPredicate.model_validate(body)


class TestSources:
    def test_directory_mtimes(self, tmp_path: Path) -> None:
        root = tmp_path / "cams"
        root.mkdir()
        for name, hours in [("new.jpg", 2), ("old.jpg", 48), ("clip.mp4", 100)]:
            (root / name).write_bytes(name.encode())
            os.utime(root / name, (hours_before(hours), hours_before(hours)))
        access = DirectoryAccess(root=str(root), exclude=(), narrowed=False)
        out = ages_of(open_source(access, jobs=2, throttle=NO_LIMIT), AT)
        assert out["image"].count == 2
        assert out["image"].oldest == AT - timedelta(hours=48)
        assert out["image"].histogram == {"under-24h": 1, "under-7d": 1}
        assert out["video"].histogram == {"under-7d": 1}

    @pytest.fixture(params=["sqlite", "postgresql"])
    def sql_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        import sqlalchemy as sa

        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
            stamp = "TEXT"
        else:
            import psycopg

            server: PostgresServer = request.getfixturevalue("postgres")
            name = f"ages_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = server.url(name)
            stamp = "TIMESTAMP"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE faces (id INTEGER PRIMARY KEY, jpeg TEXT, "
                                 f"taken {stamp})"))
            conn.execute(sa.text("INSERT INTO faces VALUES (:i, :j, :t)"), [
                {"i": 1, "j": "face 1", "t": (AT - timedelta(hours=3)).replace(tzinfo=None)},
                {"i": 2, "j": "face 2", "t": (AT - timedelta(hours=30)).replace(tzinfo=None)},
                {"i": 3, "j": "face 3", "t": None}])
        engine.dispose()
        return url

    def test_sql_timestamp_column(self, sql_url: str) -> None:
        access = SqlAccess(url=sql_url, table="faces", key_columns=("id",),
                           content_column="jpeg", encoding="raw", filter=None,
                           timestamp_column="taken")
        out = ages_of(open_source(access, jobs=1, throttle=NO_LIMIT), AT, kind="row")
        # The row without a time is hashed but has no age.
        assert out == {"row": AgeSummary(count=2, oldest=AT - timedelta(hours=30),
                                           histogram={"under-24h": 1, "under-7d": 1})}

    def test_sql_deletes_with_a_timestamp_column(self, sql_url: str) -> None:
        import hashlib

        access = SqlAccess(url=sql_url, table="faces", key_columns=("id",),
                           content_column="jpeg", encoding="raw", filter=None,
                           timestamp_column="taken")
        source = open_source(access, jobs=1, throttle=NO_LIMIT)
        (removal,) = source.delete([("[1]", hashlib.sha256(b"face 1").digest())])
        assert removal.ok
        assert not source.exists("[1]")
        source.close()

    def test_object_store_last_modified(self, s3_server: S3Server) -> None:
        client: Any = s3_server.client()
        bucket = f"a-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="s/a.jpg", Body=b"face a")
        client.put_object(Bucket=bucket, Key="s/b.txt", Body=b"note")
        access = ObjectStoreAccess(endpoint=s3_server.endpoint, bucket=bucket, prefix="s/",
                                   access_key_id=s3_server.access_key_id,
                                   secret_access_key=s3_server.secret_access_key,
                                   region=None, narrowed=False)
        # Measured a day and an hour after the uploads: both are older than 24 h.
        later = datetime.now(UTC) + timedelta(hours=25)
        out = ages_of(open_source(access, jobs=2, throttle=NO_LIMIT), later)
        assert {k: (v.count, v.histogram) for k, v in out.items()} == {
            "image": (1, {"under-7d": 1}), "text": (1, {"under-7d": 1})}
        assert out["image"].oldest <= datetime.now(UTC)


def test_a_scan_statement_carries_ages() -> None:
    ages = AgeTally(AT)
    ages.add("x.jpg", hours_before(50))
    report = ScanReport(scope_id="3", spec_digest="b" * 64, scan_id="scn_1", challenge=None,
                        present=[], skipped_path_hashes=[],
                        counts=ScanCounts(objects=1, hashed=1, hashed_bytes=1, present=0),
                        root="c" * 64, coverage="complete", started_at=AT, finished_at=AT,
                        ages=ages.summary())
    (build,) = scan_builders(keys.generate(), Chain("1", "agt_1", "d" * 64), report)
    payload, envelope = build(0, None)
    assert Envelope.from_json(envelope).payload == payload
    statement = parse_statement(payload)
    parsed = parse_predicate(statement)
    assert isinstance(parsed, ScanPredicate)
    assert parsed.ages is not None
    assert parsed.ages["image"].histogram == {"under-7d": 1}
