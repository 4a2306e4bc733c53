"""The replay's item loader: the registered manifest file streamed into the throwaway
database, every way it can be the wrong file named with its line."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.core import manifest as mf
from deletion_audit.models import ManifestItem
from deletion_audit.models.manifests import KIND_NAMES
from deletion_audit.verdicts import replay_store
from deletion_audit.verdicts.replay_store import (
    ItemsLoad,
    ItemsLoaded,
    LoadedManifest,
    ManifestFileError,
    create_items_database,
    load_items,
    load_read_items,
    replay_engine,
)
from tests.support.evidence import entries


@pytest.fixture
def manifest(tmp_path: Path) -> tuple[Path, mf.ManifestSummary]:
    path = tmp_path / "m.jsonl"
    header = mf.ManifestHeader(case="(2024)沪03民特25号", count=0,
                               created_at="2026-03-02T01:30:00Z")
    return path, mf.write_manifest(path, header, entries(300)).summary


def _load(tmp_path: Path, path: Path, *, parallel: bool = False) -> tuple[LoadedManifest, int]:
    directory = tmp_path / "db"
    directory.mkdir(exist_ok=True)
    engine = replay_engine(directory)
    items = ItemsLoad(directory, path, 7, 10**9 if parallel else 0)
    try:
        with Session(engine) as session, session.begin():
            loaded = items.result(session, path, 7)
            rows = session.execute(select(func.count()).select_from(ManifestItem)
                                   .where(ManifestItem.manifest_id == 7)).scalar_one()
        return loaded, rows
    finally:
        items.cancel()
        engine.dispose()


class TestLoadItems:
    @pytest.mark.parametrize("parallel", [False, True], ids=["inline", "child"])
    def test_every_entry_with_the_files_digest(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary], parallel: bool
    ) -> None:
        path, summary = manifest
        loaded, rows = _load(tmp_path, path, parallel=parallel)
        assert (loaded.count, rows, loaded.sha256) == (300, 300, summary.sha256)
        assert loaded.header == summary.header.to_json_dict()

    @pytest.mark.parametrize(("damage", "message"), [
        (lambda d: d[:-1], "truncated: the last line has no newline"),
        (lambda _: b"", "empty file: no header line"),
        (lambda d: b"{}\n" + d.split(b"\n", 1)[1], "line 1: missing field"),
        (lambda d: d.replace(b'"kind":"image"', b'"kind":"photo"', 1),
         r"line \d+: not a canonical manifest entry"),
        (lambda d: d + d.split(b"\n")[1] + b"\n", "line 302: entries are not strictly "
         "ascending"),
    ], ids=["truncated", "empty", "header", "entry", "order"])
    def test_a_damaged_file_is_named_with_its_line(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary],
        damage: Callable[[bytes], bytes], message: str,
    ) -> None:
        path, _ = manifest
        path.write_bytes(damage(path.read_bytes()))
        with pytest.raises(ManifestFileError, match=message):
            _load(tmp_path, path)

    def test_a_missing_file(self, tmp_path: Path) -> None:
        engine = replay_engine(tmp_path)
        with Session(engine) as session, pytest.raises(ManifestFileError, match="cannot read"):
            load_items(session, path=tmp_path / "absent.jsonl", manifest_id=1)
        engine.dispose()

    def test_the_child_names_the_line_too(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary]
    ) -> None:
        path, _ = manifest
        path.write_bytes(path.read_bytes()[:-1])
        with pytest.raises(ManifestFileError, match="truncated"):
            _load(tmp_path, path, parallel=True)


class TestItemsLoadedByTheCaller:
    """A bundle's verifier loads the items on its own pass over the file (one read)."""

    def _loaded(self, tmp_path: Path, path: Path,
                beside: bool = False) -> tuple[Path, LoadedManifest]:
        items = tmp_path / "items.sqlite3"
        create_items_database(items)
        with mf.read_manifest(path) as reader:
            load_read_items(reader, items=items, manifest_id=7, beside=beside)
            summary = reader.summary
        return items, LoadedManifest(header=summary.header.to_json_dict(),
                                     count=summary.count, sha256=summary.sha256)

    @pytest.mark.parametrize("beside", [False, True], ids=["here", "forked-loader"])
    def test_the_replay_attaches_them(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary], beside: bool,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        path, summary = manifest
        monkeypatch.setattr(replay_store, "BATCH", 64)  # several batches, a partial last
        items, loaded = self._loaded(tmp_path, path, beside=beside)
        directory = tmp_path / "db"
        directory.mkdir()
        engine = replay_engine(directory, items)
        waited: list[int] = []

        def wait() -> LoadedManifest:
            waited.append(1)
            return loaded

        try:
            with Session(engine) as session, session.begin():
                got = ItemsLoaded(items, 7, wait).result(session, path, 7)
                rows = session.execute(
                    select(ManifestItem.digest, ManifestItem.kind, ManifestItem.subject,
                           ManifestItem.source)
                    .where(ManifestItem.manifest_id == 7).order_by(ManifestItem.digest)
                ).all()
        finally:
            engine.dispose()
        assert (got, waited) == (loaded, [1])
        assert got.sha256 == summary.sha256
        # What the verdict reads of each item, in the file's order.
        assert [(r.digest.hex(), KIND_NAMES[r.kind], r.subject.hex() if r.subject else None,
                 r.source) for r in rows] == [
            (e.digest, e.kind, e.subject, e.source) for e in mf.read_manifest(path)]
        assert not (directory / "items.sqlite3").exists()

    def test_the_items_of_another_manifest(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary]
    ) -> None:
        path, _ = manifest
        items, loaded = self._loaded(tmp_path, path)
        engine = replay_engine(tmp_path, items)
        try:
            with Session(engine) as session, pytest.raises(
                    ManifestFileError, match="items of manifest 7 were loaded, but "
                    "manifest 8 is the active one"):
                ItemsLoaded(items, 7, lambda: loaded).result(session, path, 8)
        finally:
            engine.dispose()

    @pytest.mark.parametrize("beside", [False, True], ids=["here", "forked-loader"])
    def test_a_damaged_file_is_refused_with_its_line(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary], beside: bool,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        path, _ = manifest
        lines = path.read_bytes().split(b"\n")
        # Past the first slice of lines the reader matches at once: a forked loader has
        # rows by then, and is stopped.
        monkeypatch.setattr("deletion_audit.core.manifest._reader.FIND_LINES", 100)
        damaged = lines[250].replace(b'"kind":"', b'"kind":"x', 1)
        path.write_bytes(b"\n".join([*lines[:250], damaged, *lines[251:]]))
        with pytest.raises(mf.ManifestError, match=r"line 251"):
            self._loaded(tmp_path, path, beside=beside)

    def test_a_loader_that_cannot_write_is_an_error(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary]
    ) -> None:
        """The forked loader's failure reaches the reader's process, named; nothing hangs."""
        path, _ = manifest
        items = tmp_path / "items.sqlite3"
        create_items_database(items)
        with sqlite3.connect(items) as conn:
            conn.execute("DROP TABLE manifest_items")
        with mf.read_manifest(path) as reader, pytest.raises(
                replay_store.ItemsLoadError, match="no such table: manifest_items"):
            load_read_items(reader, items=items, manifest_id=7, beside=True)

    def test_each_batch_is_committed_as_it_goes(
        self, tmp_path: Path, manifest: tuple[Path, mf.ManifestSummary],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Regression: the loader held one write transaction over the whole file, and once
        its pages spilled to disk a replay starting beside it could not attach the
        database ("database is locked"). A replay attaching before each batch of 50 rows
        sees the ones before it committed."""
        path, _ = manifest
        monkeypatch.setattr("deletion_audit.verdicts.replay_store.BATCH", 50)
        items = tmp_path / "items.sqlite3"
        create_items_database(items)
        seen: list[int] = []
        real_insert = replay_store._insert_loaded

        def attach_then_insert(conn: sqlite3.Connection,
                               rows: list[replay_store.LoadedRow]) -> None:
            if len(seen) < 2:
                directory = tmp_path / f"replay-{len(seen)}"
                directory.mkdir()
                engine = replay_engine(directory, items)
                with engine.connect() as attached:
                    seen.append(attached.execute(select(func.count()).select_from(
                        ManifestItem)).scalar_one())
                engine.dispose()
            real_insert(conn, rows)

        monkeypatch.setattr(replay_store, "_insert_loaded", attach_then_insert)
        with mf.read_manifest(path) as reader:
            load_read_items(reader, items=items, manifest_id=7)
        assert seen == [0, 50]
