"""The registered manifest file regenerated from the database, byte for byte, on both
engines: what a bundle carries as the manifest."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from deletion_audit.core import manifest as mf
from deletion_audit.evidence.export import ManifestExportError, write_manifest_file
from deletion_audit.models import Manifest, ManifestItem
from tests.support.evidence import SignedManifest, entries, examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.world import World


def _register(client: TestClient, world: World, directory: Path,
              items: list[mf.ManifestEntry]) -> tuple[int, SignedManifest]:
    signed = write_signed(directory, examiner_key(world), case=world.case_number, items=items)
    r = client.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
        "manifest": ("manifest.jsonl", signed.path.read_bytes()),
        "envelope": ("manifest.dsse.json", json.dumps(signed.envelope).encode())})
    assert r.status_code == 201, r.text
    manifest_id: int = r.json()["id"]
    return manifest_id, signed


def _export(env: LogEnv, manifest_id: int) -> bytes:
    out = io.BytesIO()
    with env.db.read() as session:
        write_manifest_file(session, manifest_id, out)
    return out.getvalue()


def _entry(i: int, **fields: str | None) -> mf.ManifestEntry:
    return mf.ManifestEntry(digest=hashlib.sha256(b"item %d" % i).hexdigest(), kind="image",
                            size=1000 + i, **fields)


class TestWriteManifestFile:
    def test_one_bare_item(self, client: TestClient, world: World, env: LogEnv,
                           tmp_path: Path) -> None:
        manifest_id, signed = _register(client, world, tmp_path, [_entry(1)])
        assert _export(env, manifest_id) == signed.path.read_bytes()

    def test_one_item_with_every_optional_field(self, client: TestClient, world: World,
                                                env: LogEnv, tmp_path: Path) -> None:
        item = _entry(2, subject="a" * 64, pdq="0f" * 32, source="SH-QP/NAS1")
        manifest_id, signed = _register(client, world, tmp_path, [item])
        assert _export(env, manifest_id) == signed.path.read_bytes()

    def test_many_items_mixed_over_several_pages(
        self, client: TestClient, world: World, env: LogEnv, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr("deletion_audit.evidence.export.PAGE", 97)
        items = [e if i % 3 else mf.ManifestEntry(digest=e.digest, kind=e.kind, size=e.size,
                                                   pdq=hashlib.sha256(e.digest.encode())
                                                   .hexdigest())
                 for i, e in enumerate(entries(700))]
        manifest_id, signed = _register(client, world, tmp_path, items)
        data = _export(env, manifest_id)
        assert data == signed.path.read_bytes()
        assert data.count(b"\n") == 701
        for name in (b'"pdq"', b'"subject"', b'"source"'):
            assert name in data

    def test_a_damaged_row_is_an_error_not_a_different_file(
        self, client: TestClient, world: World, env: LogEnv, tmp_path: Path
    ) -> None:
        manifest_id, _ = _register(client, world, tmp_path, entries(5))
        with env.db.write() as session:
            session.execute(update(ManifestItem).where(
                ManifestItem.manifest_id == manifest_id, ManifestItem.ordinal == 3)
                .values(size=1))
        with pytest.raises(ManifestExportError, match="SHA-256"):
            _export(env, manifest_id)

    def test_a_missing_row_is_named(self, client: TestClient, world: World, env: LogEnv,
                                    tmp_path: Path) -> None:
        manifest_id, _ = _register(client, world, tmp_path, entries(5))
        with env.db.write() as session:
            session.query(ManifestItem).filter(ManifestItem.manifest_id == manifest_id,
                                               ManifestItem.ordinal == 2).delete()
        with pytest.raises(ManifestExportError, match="no entry 2"):
            _export(env, manifest_id)

    def test_an_unknown_manifest(self, env: LogEnv, world: World) -> None:
        with env.db.read() as session:
            assert session.get(Manifest, 999) is None
        with pytest.raises(ManifestExportError, match="no registered manifest 999"):
            _export(env, 999)
