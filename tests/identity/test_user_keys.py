"""People's signing keys over HTTP: registration and revocation are public log events."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.core import keys
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.leaves import decode_leaf
from deletion_audit.core.predicates import KeyRegistrationPredicate
from deletion_audit.models import LogLeaf, UserKey
from tests.support.log import LogEnv
from tests.support.world import World

URL = "/api/v1/users/me/keys"


def _pem(tmp_path: Path, name: str = "me") -> tuple[str, str]:
    key_id = keys.write_keypair(tmp_path / f"{name}.pem")
    return (tmp_path / f"{name}.pem.pub").read_text(), key_id


def _leaf(env: LogEnv, leaf_hash: str) -> dict[str, object]:
    with env.db.read() as session:
        data = session.execute(
            select(LogLeaf.data).where(LogLeaf.leaf_hash == bytes.fromhex(leaf_hash))
        ).scalar_one()
    return json.loads(data)


class TestRegisterKey:
    def test_pem_registration_is_logged_in_clear(
        self, env: LogEnv, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        pem, key_id = _pem(tmp_path)
        r = client.post(URL, headers=world.examiner.headers, json={"public_key": pem,
                                                                   "label": "laptop"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["key_id"] == key_id
        assert body["leaf_hash"] == body["registration_leaf_hash"]
        leaf = _leaf(env, body["leaf_hash"])
        assert leaf["type"] == "key-registration"
        event = leaf["event"]
        assert isinstance(event, dict)
        # The public event is a valid key-registration predicate naming the user by id.
        predicate = KeyRegistrationPredicate.model_validate(event, by_alias=True)
        assert predicate.key_id == key_id
        assert predicate.subject_type == "user"
        assert predicate.subject_id == str(world.examiner.user_id)

    def test_base64_raw_key_is_accepted(self, client: TestClient, world: World) -> None:
        raw = keys.raw_public(keys.generate())
        r = client.post(URL, headers=world.prosecutor.headers,
                        json={"public_key": b64encode(raw)})
        assert r.status_code == 201
        assert r.json()["public_key"] == b64encode(raw)

    def test_same_key_twice_is_a_conflict(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        pem, _ = _pem(tmp_path)
        assert client.post(URL, headers=world.examiner.headers,
                           json={"public_key": pem}).status_code == 201
        mine = client.post(URL, headers=world.examiner.headers, json={"public_key": pem})
        theirs = client.post(URL, headers=world.company.headers, json={"public_key": pem})
        assert (mine.status_code, theirs.status_code) == (409, 409)
        assert "another person" in theirs.json()["message"]

    def test_private_key_is_refused(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        keys.write_keypair(tmp_path / "k.pem")
        r = client.post(URL, headers=world.examiner.headers,
                        json={"public_key": (tmp_path / "k.pem").read_text()})
        assert r.status_code == 400
        assert "private key" in r.json()["message"]

    def test_garbage_is_a_clear_400(self, client: TestClient, world: World) -> None:
        r = client.post(URL, headers=world.examiner.headers, json={"public_key": "not a key!"})
        assert r.status_code == 400
        assert "PEM or base64" in r.json()["message"]

    def test_empty_body_is_422(self, client: TestClient, world: World) -> None:
        r = client.post(URL, headers=world.examiner.headers, json={})
        assert r.status_code == 422
        assert "public_key" in r.json()["message"]


class TestListAndRevokeKeys:
    def test_list_is_mine_only_and_paginated(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        for i in range(3):
            pem, _ = _pem(tmp_path, f"k{i}")
            client.post(URL, headers=world.examiner.headers, json={"public_key": pem})
        first = client.get(URL, headers=world.examiner.headers, params={"limit": 2}).json()
        assert len(first["items"]) == 2
        rest = client.get(URL, headers=world.examiner.headers,
                          params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert len(rest["items"]) == 1
        assert rest["next_cursor"] is None
        assert client.get(URL, headers=world.company.headers).json()["items"] == []

    def test_revocation_is_logged_with_a_reason_code(
        self, env: LogEnv, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        pem, key_id = _pem(tmp_path)
        client.post(URL, headers=world.examiner.headers, json={"public_key": pem})
        r = client.delete(f"{URL}/{key_id}", headers=world.examiner.headers,
                          params={"reason": "compromised"})
        assert r.status_code == 200
        assert r.json()["revocation_reason"] == "compromised"
        leaf = decode_leaf(json.dumps(_leaf(env, r.json()["leaf_hash"]),
                                      separators=(",", ":"), sort_keys=True).encode())
        assert leaf.type == "key-revocation"
        assert leaf.event is not None
        assert leaf.event["keyId"] == key_id
        with env.db.read() as session:
            row = session.execute(select(UserKey).where(UserKey.key_id == key_id)).scalar_one()
        assert row.revoked_at is not None
        again = client.delete(f"{URL}/{key_id}", headers=world.examiner.headers)
        assert again.status_code == 409

    def test_someone_elses_key_is_404(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        pem, key_id = _pem(tmp_path)
        client.post(URL, headers=world.examiner.headers, json={"public_key": pem})
        r = client.delete(f"{URL}/{key_id}", headers=world.company.headers)
        assert r.status_code == 404

    def test_unknown_reason_is_422(self, client: TestClient, world: World) -> None:
        r = client.delete(f"{URL}/{'0' * 64}", headers=world.examiner.headers,
                          params={"reason": "because"})
        assert r.status_code == 422
