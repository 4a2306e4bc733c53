"""A case for bundle tests, built through the API as in tests/verdicts (manifest of six
items, a scope, the company's agent), exported with the real exporter, and helpers that
tamper with a bundle the ways an attacker would."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deletion_audit.bundles import layout
from deletion_audit.bundles.layout import BundleIndex, IndexEntry, Tier
from deletion_audit.bundles.service import export_bundle, prepare_export
from deletion_audit.bundles.verify import Anchor, Report, verify_bundle
from deletion_audit.core import dsse
from deletion_audit.log.service import latest_checkpoint
from tests.support import evidence
from tests.support.agents import declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World
from tests.verdicts.conftest import Case, register_manifest


@dataclass
class Bundles:
    case: Case
    directory: Path

    @property
    def env(self) -> LogEnv:
        return self.case.env

    @property
    def log_key(self) -> str:
        return self.env.ctx.keys.verifier.vkey()

    def export(self, tier: Tier, name: str | None = None,
               consistent_with: tuple[int, ...] = ()) -> Path:
        env = self.env
        prepare_export(env.db, keys=env.ctx.keys, settings=env.settings, clock=env.clock,
                       case_id=self.case.world.case_id)
        path = self.directory / (name or f"{tier.value}.zip")
        with path.open("wb") as fh:
            export_bundle(env.db, keys=env.ctx.keys, case_id=self.case.world.case_id,
                          tier=tier, now=env.clock.now(), out=fh,
                          consistent_with=consistent_with)
        return path

    def verify(self, path: Path, anchor: Anchor | None = None) -> Report:
        return verify_bundle(path, anchor or Anchor(log_key=self.log_key))

    def checkpoint(self) -> str:
        with self.env.db.read() as session:
            row = latest_checkpoint(session)
            assert row is not None
            return row.note

    def tamper(self, src: Path, *, change: Callable[[str, bytes], bytes | None] | None = None,
               add: dict[str, bytes] | None = None, resign: bool = False,
               name: str = "tampered.zip") -> Path:
        """A copy of ``src`` with members changed (``None``: removed) and added; with
        ``resign`` the index is rebuilt and signed with the service key, as an insider
        holding that key could — so the deeper checks have to catch the change."""
        members: dict[str, bytes] = {}
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                data = zf.read(info.filename)
                new = change(info.filename, data) if change else data
                if new is not None:
                    members[info.filename] = new
        members.update(add or {})
        if resign:
            members[layout.INDEX] = self._resign(members)
        out = self.directory / name
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for member, data in members.items():
                zf.writestr(member, data)
        return out

    def _resign(self, members: dict[str, bytes]) -> bytes:
        envelope = dsse.Envelope.from_json(members[layout.INDEX])
        old = layout.parse_index(envelope.payload)
        files = tuple(IndexEntry(path=n, sha256=layout.sha256_hex(d), size=len(d))
                      for n, d in members.items() if n != layout.INDEX)
        index = BundleIndex(tier=old.tier, case_id=old.case_id, case_number=old.case_number,
                            origin=old.origin, log_size=old.log_size,
                            exported_at=old.exported_at, files=files)
        return dsse.sign(index.payload(), layout.INDEX_PAYLOAD_TYPE,
                         self.env.ctx.keys.service_key).to_json()


def read_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def jsonl(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in io.BytesIO(data)]


def codes(report: Report) -> set[str]:
    return {p.code for p in report.problems}


@pytest.fixture
def bundles(client: TestClient, world: World, env: LogEnv, tmp_path: Path) -> Bundles:
    entries = sorted(evidence.entries(6), key=lambda e: e.digest)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    register_manifest(client, world, manifests, entries)
    scope = declare_scope(client, world)
    agent = enroll(client, world, scope_ids=[scope["id"]])
    case = Case(client=client, world=world, env=env, scope=scope, agent=agent,
                entries=entries)
    out = tmp_path / "bundles"
    out.mkdir()
    return Bundles(case=case, directory=out)


def deleted_and_clean(case: Case) -> None:
    """Two items found, deleted, then a clean challenged scan: a `verified` case."""
    case.scan(present=case.digests[:2])
    case.delete(case.digests[:2], minutes=1)
    case.scan(minutes=2)
