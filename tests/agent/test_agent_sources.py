"""Sources on real stores: a directory tree, SQLite and PostgreSQL tables, and an S3 bucket
served by a real SeaweedFS process."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from deletion_audit_agent.config import DirectoryAccess, ObjectStoreAccess, SqlAccess
from deletion_audit_agent.sources import Hashed, Skipped, Throttle, open_source
from deletion_audit_agent.state import State
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server

NO_LIMIT = Throttle(None)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class TestDirectorySource:
    @pytest.fixture
    def tree(self, tmp_path: Path) -> Path:
        root = tmp_path / "cams"
        (root / "b" / "c").mkdir(parents=True)
        (root / "a.jpg").write_bytes(b"\xff\xd8\xff a face")
        (root / "b" / "c" / "d.mp4").write_bytes(b"video")
        (root / "b" / "e.tmp").write_bytes(b"excluded")
        outside = tmp_path / "secret.txt"
        outside.write_bytes(b"outside the scope")
        (root / "link").symlink_to(outside)
        (root / "dirlink").symlink_to(tmp_path)
        os.mkfifo(root / "pipe")
        return root

    def scan(self, root: Path, **kwargs: Any) -> list[Any]:
        access = DirectoryAccess(root=str(root), exclude=("*.tmp",), narrowed=False)
        return list(open_source(access, jobs=2, throttle=NO_LIMIT, **kwargs).scan())

    def test_hashes_files_follows_no_symlink_and_counts_skips(self, tree: Path) -> None:
        seen = self.scan(tree)
        hashed = [(Path(s.locator).relative_to(tree).as_posix(), s.digest) for s in seen
                  if isinstance(s, Hashed)]
        assert hashed == [("a.jpg", sha(b"\xff\xd8\xff a face")),
                          ("b/c/d.mp4", sha(b"video"))]
        skipped = sorted((Path(s.locator).name, s.reason) for s in seen
                         if isinstance(s, Skipped))
        assert skipped == [("dirlink", "symlink"), ("link", "symlink"),
                           ("pipe", "special-file")]

    def test_order_is_stable(self, tree: Path) -> None:
        assert self.scan(tree) == self.scan(tree)

    def test_cache_is_used_only_when_asked(self, tree: Path, tmp_path: Path) -> None:
        state = State(tmp_path / "state")
        self.scan(tree, cache=state)
        # Same inode, size and times, other content: only the cache can answer the old hash.
        target = tree / "a.jpg"
        st = target.stat()
        target.write_bytes(b"\xff\xd8\xff a fake")
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        cached = {s.locator: s for s in self.scan(tree, cache=state, use_cache=True)}
        fresh = {s.locator: s for s in self.scan(tree, cache=state)}
        # ctime moved with the write, so even the cache refuses the stale digest.
        assert cached[str(target)].digest == sha(b"\xff\xd8\xff a fake")
        assert fresh[str(target)].digest == sha(b"\xff\xd8\xff a fake")
        state.close()

    def test_many_small_files_go_to_processes_with_the_same_result(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "many"
        for i in range(300):
            sub = root / f"d{i % 7}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:04d}.jpg").write_bytes(f"small {i}".encode() * 10)
        (root / "d0" / "0000.jpg").chmod(0)
        access = DirectoryAccess(root=str(root), exclude=(), narrowed=False)
        parallel = open_source(access, jobs=2, throttle=NO_LIMIT)
        assert parallel._strategy()[0] == "processes"  # type: ignore[attr-defined]
        serial = open_source(access, jobs=1, throttle=NO_LIMIT)
        assert list(parallel.scan()) == list(serial.scan())
        assert len(list(serial.scan())) == 300

    def test_delete_removes_only_unchanged_content(self, tree: Path) -> None:
        access = DirectoryAccess(root=str(tree), exclude=(), narrowed=False)
        source = open_source(access, jobs=1, throttle=NO_LIMIT)
        removals = list(source.delete([(str(tree / "a.jpg"), sha(b"\xff\xd8\xff a face")),
                                       (str(tree / "b/c/d.mp4"), sha(b"other"))]))
        assert [r.ok for r in removals] == [True, False]
        assert not (tree / "a.jpg").exists()
        assert (tree / "b/c/d.mp4").exists()
        assert source.exists(str(tree / "b/c/d.mp4"))
        assert not source.exists(str(tree / "a.jpg"))

    def test_overwrite_grade_is_sanitised(self, tree: Path) -> None:
        access = DirectoryAccess(root=str(tree), exclude=(), narrowed=False)
        source = open_source(access, jobs=1, throttle=NO_LIMIT, overwrite=True)
        assert (source.method, source.grade) == ("overwrite", "sanitised")
        (removal,) = source.delete([(str(tree / "a.jpg"), sha(b"\xff\xd8\xff a face"))])
        assert removal.ok
        assert not (tree / "a.jpg").exists()


def _fill_table(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE faces (store INTEGER, id INTEGER, jpeg TEXT, "
                             "gone INTEGER, PRIMARY KEY (store, id))"))
        rows = [{"s": 1, "i": i, "j": base64.b64encode(f"face {i}".encode()).decode(), "g": 0}
                for i in range(1, 1201)]
        rows += [{"s": 2, "i": 1, "j": None, "g": 0}, {"s": 2, "i": 2, "j": "%%%", "g": 0},
                 {"s": 2, "i": 3, "j": base64.b64encode(b"hidden").decode(), "g": 1}]
        conn.execute(sa.text("INSERT INTO faces VALUES (:s, :i, :j, :g)"), rows)
    engine.dispose()


def _count(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(sa.text("SELECT count(*) FROM faces")).scalar_one())
    engine.dispose()
    return n


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    else:
        import psycopg

        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"agent_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = server.url(name)
    _fill_table(url)
    return url


class TestSqlSource:
    def access(self, url: str) -> SqlAccess:
        return SqlAccess(url=url, table="faces", key_columns=("store", "id"),
                         content_column="jpeg", encoding="base64", filter="gone = 0")

    def test_streams_rows_in_key_order_and_skips_null(self, sql_url: str) -> None:
        source = open_source(self.access(sql_url), jobs=1, throttle=NO_LIMIT)
        seen = list(source.scan())
        source.close()
        hashed = [s for s in seen if isinstance(s, Hashed)]
        assert len(hashed) == 1200
        assert hashed[0] == Hashed("[1,1]", sha(b"face 1"), 6)
        assert [s.locator for s in hashed[:3]] == ["[1,1]", "[1,2]", "[1,3]"]
        skipped = [(s.locator, s.reason) for s in seen if isinstance(s, Skipped)]
        # The filter hides row (2, 3); NULL and bad base64 are counted skips.
        assert skipped == [("[2,1]", "null-content"), ("[2,2]", "undecodable")]

    def test_deletes_by_key_in_batches(self, sql_url: str) -> None:
        source = open_source(self.access(sql_url), jobs=1, throttle=NO_LIMIT)
        doomed = [(f"[1,{i}]", sha(f"face {i}".encode())) for i in range(1, 701)]
        doomed.append(("[1,701]", sha(b"not its content")))
        removals = list(source.delete(doomed))
        assert (source.exists("[1,1]"), source.exists("[1,701]")) == (False, True)
        source.close()
        assert sum(r.ok for r in removals) == 700
        assert not removals[-1].ok
        assert _count(sql_url) == 1203 - 700


class TestObjectStoreSource:
    def access(self, s3: S3Server, bucket: str, prefix: str = "store-7/") -> ObjectStoreAccess:
        return ObjectStoreAccess(endpoint=s3.endpoint, bucket=bucket, prefix=prefix,
                                 access_key_id=s3.access_key_id,
                                 secret_access_key=s3.secret_access_key, region=None,
                                 narrowed=False)

    def test_scans_the_prefix_only(self, s3_server: S3Server) -> None:
        client: Any = s3_server.client()
        bucket = f"b-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="store-7/a.jpg", Body=b"face a")
        client.put_object(Bucket=bucket, Key="store-7/x/b.jpg", Body=b"face b" * 100_000)
        client.put_object(Bucket=bucket, Key="store-8/c.jpg", Body=b"face c")
        source = open_source(self.access(s3_server, bucket), jobs=2, throttle=NO_LIMIT)
        seen = list(source.scan())
        assert [(s.locator, s.digest) for s in seen if isinstance(s, Hashed)] == [
            ("store-7/a.jpg", sha(b"face a")), ("store-7/x/b.jpg", sha(b"face b" * 100_000))]

    def test_versions_are_scanned_and_deleted(self, s3_server: S3Server) -> None:
        client: Any = s3_server.client()
        bucket = f"v-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
        client.put_object(Bucket=bucket, Key="store-7/a.jpg", Body=b"old face")
        client.put_object(Bucket=bucket, Key="store-7/a.jpg", Body=b"new face")
        source = open_source(self.access(s3_server, bucket), jobs=2, throttle=NO_LIMIT)
        seen = [s for s in source.scan() if isinstance(s, Hashed)]
        assert sorted(s.digest for s in seen) == sorted([sha(b"old face"), sha(b"new face")])
        old = next(s for s in seen if s.digest == sha(b"old face"))
        new = next(s for s in seen if s.digest == sha(b"new face"))
        assert source.exists(old.locator)
        (removal,) = source.delete([(old.locator, old.digest)])
        assert removal.ok
        assert not source.exists(old.locator)
        assert source.exists(new.locator)
        assert not source.exists("store-7/never.jpg")
        left = client.list_object_versions(Bucket=bucket, Prefix="store-7/")
        bodies = [client.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
                  ["Body"].read() for v in left.get("Versions", [])]
        assert bodies == [b"new face"]


class TestThrottle:
    def test_reading_is_held_to_the_rate(self) -> None:
        import time

        throttle = Throttle(100_000)
        start = time.monotonic()
        for _ in range(5):
            throttle.spend(10_000)
        # 50 kB at 100 kB/s: the first read is free, the other four wait 0.1 s each.
        assert 0.35 <= time.monotonic() - start < 1.5

    def test_no_rate_never_waits(self) -> None:
        import time

        start = time.monotonic()
        Throttle(None).spend(10**12)
        assert time.monotonic() - start < 0.1
