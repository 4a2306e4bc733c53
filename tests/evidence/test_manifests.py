"""Registering manifests: the import, its refusals, supersession, uploads, matching material.

Every test runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deletion_audit.clock import FixedClock
from deletion_audit.core import bloom, dsse, keys, merkle
from deletion_audit.core import manifest as mf
from deletion_audit.core.statements import statement_bytes
from deletion_audit.evidence.manifests import sweep_abandoned
from deletion_audit.evidence.tasks import housekeeping, upload_path
from deletion_audit.models import Manifest, ManifestItem, ManifestNode
from tests.support.evidence import SignedManifest, entries, examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.world import World


@pytest.fixture
def key(world: World) -> Ed25519PrivateKey:
    return examiner_key(world)


def post(client: TestClient, world: World, signed: SignedManifest, *,
         reason: str | None = None, data: bytes | None = None) -> Any:
    files = {
        "manifest": ("manifest.jsonl", data if data is not None else signed.path.read_bytes()),
        "envelope": ("manifest.dsse.json", json.dumps(signed.envelope).encode()),
    }
    form = {"supersede_reason": reason} if reason else None
    return client.post(f"{world.url}/manifests", headers=world.prosecutor.headers,
                       files=files, data=form)


def table_counts(env: LogEnv) -> tuple[int, int, int]:
    with env.db.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Manifest)) or 0,
            session.scalar(select(func.count()).select_from(ManifestItem)) or 0,
            session.scalar(select(func.count()).select_from(ManifestNode)) or 0,
        )


class TestRegister:
    def test_register_reports_counts_people_and_root(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(700))
        r = post(client, world, signed)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["state"] == "active"
        assert body["count"] == 700
        assert body["kinds"] == {"image": 420, "video": 140, "record": 140}
        assert body["people"] == 5
        assert body["root"] == signed.summary.root_hex
        assert body["file_sha256"] == signed.summary.sha256
        assert body["examiner_key_id"] == keys.key_id(key.public_key())
        got = client.get(f"{world.url}/manifests/{body['id']}", headers=world.witness.headers)
        assert got.json() == body
        listed = client.get(f"{world.url}/manifests", headers=world.company.headers).json()
        assert [m["id"] for m in listed["items"]] == [body["id"]]

    def test_registration_is_logged_as_a_restricted_event(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path,
        env: LogEnv,
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(3))
        leaf = post(client, world, signed).json()["leaf_hash"]
        env.integrate()
        entry = client.get(f"/api/v1/log/leaf/{leaf}").json()
        data = client.get(f"/api/v1/log/entries/{entry['index']}").json()
        assert data["leaf"]["type"] == "manifest"
        assert "commitment" in data["leaf"]
        assert signed.summary.root_hex not in json.dumps(data)


def _lines(signed: SignedManifest) -> list[bytes]:
    return signed.path.read_bytes().split(b"\n")


def _mutate(lines: list[bytes], index: int, old: bytes, new: bytes) -> list[bytes]:
    out = list(lines)
    assert old in out[index]
    out[index] = out[index].replace(old, new, 1)
    return out


BAD_FILES = {
    "bad hex": (lambda ls: _mutate(ls, 3, b'"digest":"', b'"digest":"zz'), 4, "hex"),
    "wrong length": (lambda ls: _mutate(ls, 2, b'"digest":"', b'"digest":"0'), 3, "length"),
    "unknown kind": (lambda ls: _mutate(ls, 5, b'"kind":"', b'"kind":"x'), 6, "kind"),
    "duplicate digest": (lambda ls: [*ls[:4], ls[3], *ls[4:-2], ls[-1]], 5, "duplicate"),
    "out of order": (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 3, "out-of-order"),
    "count mismatch": (lambda ls: [*ls[:-2], ls[-1]], 10, "count"),
    "truncated": (lambda ls: ls[:-1], 10, "truncated"),
    "not canonical": (lambda ls: _mutate(ls, 1, b'{"digest"', b'{ "digest"'), 2, "canonical"),
    "empty manifest": (lambda ls: [ls[0].replace(b'"count":9', b'"count":0'), b""], 1, "empty"),
}


class TestBadInput:
    @pytest.mark.parametrize("case", sorted(BAD_FILES))
    def test_a_bad_line_rejects_the_whole_upload(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path,
        env: LogEnv, case: str,
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(9))
        change, line, word = BAD_FILES[case]
        r = post(client, world, signed, data=b"\n".join(change(_lines(signed))))
        assert r.status_code == 422, r.text
        assert r.json()["line"] == line
        assert f"line {line}:" in r.json()["message"]
        assert word in r.json()["message"]
        assert table_counts(env) == (0, 0, 0)

    def test_a_valid_file_that_is_not_the_signed_one(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path,
        env: LogEnv,
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(9))
        other = write_signed(tmp_path, key, case=world.case_number, items=entries(9, seed=2),
                             name="other.jsonl")
        r = post(client, world, signed, data=other.path.read_bytes())
        assert r.status_code == 422
        assert "SHA-256" in r.json()["message"]
        assert table_counts(env) == (0, 0, 0)

    @pytest.mark.parametrize("field", ["root", "count"])
    def test_a_signed_root_or_count_that_is_not_the_file_s(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path,
        env: LogEnv, field: str,
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(9))
        wrong = {"root": {"root": bytes(32)}, "count": {"count": 8}}[field]
        statement = mf.statement_for(dataclasses.replace(signed.summary, **wrong),
                                     signed.path.name)
        envelope = dsse.sign(statement_bytes(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
        signed.envelope = json.loads(envelope.to_json())
        r = post(client, world, signed)
        assert r.status_code == 422
        expected = {"root": "root does not match", "count": "the signed statement says 8"}
        assert expected[field] in r.json()["message"]
        assert table_counts(env) == (0, 0, 0)

    def test_signed_by_someone_not_an_examiner_of_the_case(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, keys.generate(), case=world.case_number,
                              items=entries(4))
        r = post(client, world, signed)
        assert r.status_code == 403
        assert "examiner" in r.json()["message"]

    def test_manifest_of_another_case(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, key, case="（2026）沪0118 其他案", items=entries(4))
        r = post(client, world, signed)
        assert r.status_code == 422
        assert "case" in r.json()["message"]

    def test_an_envelope_that_is_not_json(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(4))
        r = client.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
            "manifest": ("m.jsonl", signed.path.read_bytes()), "envelope": ("e.json", b"{")})
        assert r.status_code == 400
        assert "not JSON" in r.json()["message"]


class TestSupersede:
    def test_a_second_manifest_needs_a_reason_and_both_stay(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        first = write_signed(tmp_path, key, case=world.case_number, items=entries(5))
        first_id = post(client, world, first).json()["id"]
        second = write_signed(tmp_path, key, case=world.case_number, items=entries(6, seed=3),
                              name="second.jsonl")
        refused = post(client, world, second)
        assert refused.status_code == 409
        assert "reason" in refused.json()["message"]
        again = post(client, world, first, reason="重新登记")
        assert again.status_code == 409
        r = post(client, world, second, reason="补充鉴定发现另外一个硬盘")
        assert r.status_code == 201
        assert r.json()["supersedes"] == first_id
        old = client.get(f"{world.url}/manifests/{first_id}", headers=world.prosecutor.headers)
        assert old.json()["state"] == "superseded"
        assert old.json()["superseded_reason"] == "补充鉴定发现另外一个硬盘"


class TestUpload:
    def test_chunks_resume_at_the_received_offset(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(300))
        data = signed.path.read_bytes()
        h = world.examiner.headers
        base = f"{world.url}/manifests/uploads"
        upload = client.post(base, headers=h).json()
        url = f"{base}/{upload['id']}"
        half = len(data) // 2
        assert client.put(url, headers={**h, "Upload-Offset": "0"},
                          content=data[:half]).json()["received"] == half
        # A retried first chunk (its response was lost) is told where to resume.
        stale = client.put(url, headers={**h, "Upload-Offset": "0"}, content=data[:half])
        assert stale.status_code == 409
        assert stale.json()["received"] == half
        assert client.get(url, headers=h).json()["received"] == half
        client.put(url, headers={**h, "Upload-Offset": str(half)}, content=data[half:])
        done = client.post(f"{url}/complete", headers=h, json={"envelope": signed.envelope})
        assert done.status_code == 201, done.text
        assert done.json()["root"] == signed.summary.root_hex
        repeated = client.post(f"{url}/complete", headers=h, json={"envelope": signed.envelope})
        assert repeated.status_code == 409
        assert repeated.json()["manifest_id"] == done.json()["id"]

    def test_unknown_upload(self, client: TestClient, world: World) -> None:
        r = client.get(f"{world.url}/manifests/uploads/nope", headers=world.examiner.headers)
        assert r.status_code == 404


class TestMatching:
    def test_filter_holds_every_digest_and_confirm_proves_each_hit(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        # 700 leaves: two full 256-leaf blocks and a partial one, so proofs mix stored nodes
        # (levels >= 8) with nodes recomputed from item rows.
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(700))
        manifest_id = post(client, world, signed).json()["id"]
        h = world.company.headers
        base = f"{world.url}/manifests/{manifest_id}"
        raw = client.get(f"{base}/filter", headers=h)
        assert raw.status_code == 200
        filt = bloom.BloomFilter.from_bytes(raw.content)
        assert filt.root == signed.summary.root
        assert all(filt.might_contain(bytes.fromhex(e.digest)) for e in signed.entries)
        wanted = [signed.entries[i] for i in (0, 255, 256, 511, 512, 699)]
        absent = ["ab" * 32]
        r = client.post(f"{base}/confirm", headers=h,
                        json={"digests": [e.digest for e in wanted] + absent})
        assert r.status_code == 200
        body = r.json()
        assert [hit["digest"] for hit in body["hits"]] == [e.digest for e in wanted]
        root = bytes.fromhex(body["root"])
        for hit, entry in zip(body["hits"], wanted, strict=True):
            leaf = bytes.fromhex(hit["leaf"])
            assert leaf == mf.entry_leaf(entry)
            merkle.verify_inclusion(merkle.leaf_hash(leaf), hit["index"], body["size"],
                                    [bytes.fromhex(p) for p in hit["proof"]], root)

    def test_confirm_refuses_bad_digests(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(3))
        manifest_id = post(client, world, signed).json()["id"]
        r = client.post(f"{world.url}/manifests/{manifest_id}/confirm",
                        headers=world.company.headers, json={"digests": ["00"]})
        assert r.status_code == 400


class TestAbandoned:
    def test_a_stale_import_is_swept(
        self, client: TestClient, world: World, key: Ed25519PrivateKey, tmp_path: Path,
        env: LogEnv,
    ) -> None:
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(3))
        post(client, world, signed)
        with env.db.write() as session:
            row = session.execute(select(Manifest)).scalar_one()
            row.state = "importing"
        assert sweep_abandoned(env.db, now=env.clock.now()) == 0
        assert sweep_abandoned(env.db, now=env.clock.now() + timedelta(hours=2)) == 1
        assert table_counts(env) == (0, 0, 0)

    def test_a_stale_upload_is_swept_with_its_file(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        upload = client.post(f"{world.url}/manifests/uploads",
                             headers=world.examiner.headers).json()["id"]
        path = upload_path(env.settings, upload)
        assert path.exists()
        housekeeping(env.db, env.settings, env.clock)
        assert path.exists()
        later = FixedClock(env.clock.now() + timedelta(days=2))
        housekeeping(env.db, env.settings, later)
        assert not path.exists()
        r = client.get(f"{world.url}/manifests/uploads/{upload}", headers=world.examiner.headers)
        assert r.status_code == 404
