"""The public log API and its C2SP tlog-tiles view, over HTTP, on both engines."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from deletion_audit.core import merkle, tiles
from deletion_audit.core.checkpoint import open_checkpoint
from deletion_audit.core.note import NoteVerifier
from deletion_audit.core.tlog_proof import parse_tlog_proof
from deletion_audit.log import service
from tests.conftest import T0
from tests.support.log import LogEnv


def grow(env: LogEnv, n: int) -> None:
    with env.db.write() as session:
        for i in range(n):
            service.append_event(session, event_type="challenge", event={"i": i},
                                 now=env.clock.now())
    env.integrate()


def leaf_data(env: LogEnv) -> list[bytes]:
    with env.db.read() as session:
        return [d for _, _, d in service.iter_integrated(session)]


class TestCheckpointAndKey:
    def test_checkpoint_verifies_with_the_published_key(
        self, env: LogEnv, client: TestClient
    ) -> None:
        grow(env, 3)
        vkey = client.get("/api/v1/log/key")
        assert vkey.status_code == 200
        verifier = NoteVerifier.from_vkey(vkey.text.strip())
        note = client.get("/api/v1/log/checkpoint")
        assert note.headers["content-type"].startswith("text/plain")
        cp = open_checkpoint(note.text, verifier)
        assert cp.size == 5
        assert cp.origin == env.settings.log_origin


class TestEntriesAndProofs:
    def test_entry_and_leaf_proof(self, env: LogEnv, client: TestClient) -> None:
        grow(env, 6)
        body = client.get("/api/v1/log/entries/4").json()
        data = base64.b64decode(body["data"])
        assert body["leaf"]["type"] == "challenge"
        assert body["leaf_hash"] == merkle.leaf_hash(data).hex()
        proof = client.get(f"/api/v1/log/leaf/{body['leaf_hash']}").json()
        cp = open_checkpoint(proof["checkpoint"], env.ctx.keys.verifier)
        merkle.verify_inclusion(merkle.leaf_hash(data), proof["index"], proof["size"],
                                [bytes.fromhex(h) for h in proof["hashes"]], cp.root_hash)
        text = client.get(f"/api/v1/log/leaf/{body['leaf_hash']}/tlog-proof").text
        offline = parse_tlog_proof(text)
        assert offline.index == 4
        assert offline.verify(data, env.ctx.keys.verifier).size == proof["size"]

    def test_leaf_is_404_until_integrated(self, env: LogEnv, client: TestClient) -> None:
        with env.db.write() as session:
            appended = service.append_event(session, event_type="case", event={"a": 1}, now=T0)
        pending = client.get(f"/api/v1/log/leaf/{appended.leaf_hash.hex()}")
        assert pending.status_code == 404
        assert "not integrated" in pending.json()["message"]
        env.integrate()
        assert client.get(f"/api/v1/log/leaf/{appended.leaf_hash.hex()}").status_code == 200

    def test_inclusion_and_consistency_endpoints(self, env: LogEnv, client: TestClient) -> None:
        grow(env, 10)
        data = leaf_data(env)
        root = merkle.root_from_leaf_hashes([merkle.leaf_hash(d) for d in data])
        inc = client.get("/api/v1/log/proof/inclusion", params={"index": 7, "size": 12}).json()
        assert inc["index"] == 7
        assert inc["size"] == 12
        merkle.verify_inclusion(merkle.leaf_hash(data[7]), 7, 12,
                                [bytes.fromhex(h) for h in inc["hashes"]], root)
        con = client.get("/api/v1/log/proof/consistency", params={"first": 5, "second": 12})
        first_root = merkle.root_from_leaf_hashes([merkle.leaf_hash(d) for d in data[:5]])
        merkle.verify_consistency(5, 12, [bytes.fromhex(h) for h in con.json()["hashes"]],
                                  first_root, root)

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/api/v1/log/entries/99", 404),
            ("/api/v1/log/entries/-1", 422),
            ("/api/v1/log/entries/abc", 422),
            ("/api/v1/log/leaf/zz", 400),
            ("/api/v1/log/leaf/" + "00" * 32, 404),
            ("/api/v1/log/proof/inclusion?index=5&size=3", 400),
            ("/api/v1/log/proof/inclusion?index=0&size=999", 400),
            ("/api/v1/log/proof/inclusion?index=0", 422),
            ("/api/v1/log/proof/consistency?first=3&second=2", 400),
            ("/api/v1/log/proof/consistency?first=0&second=2", 422),
            ("/api/v1/log/tiles/tile/0/001", 404),
            ("/api/v1/log/tiles/tile/0/x1", 400),
            ("/api/v1/log/tiles/tile/0/000.p/0", 400),
        ],
    )
    def test_bad_parameters_get_a_clear_4xx(
        self, client: TestClient, path: str, status: int
    ) -> None:
        response = client.get(path)
        assert response.status_code == status
        body = response.json()
        assert body["code"]
        assert body["message"]


class TestTiles:
    def test_tiles_serve_the_same_tree(self, env: LogEnv, client: TestClient) -> None:
        grow(env, 258 + 300)  # 560 leaves: two full level-0 tiles and a partial
        data = leaf_data(env)
        assert len(data) == 560
        reference = merkle.MemoryTree()
        for d in data:
            reference.append(merkle.leaf_hash(d))
        full = client.get("/api/v1/log/tiles/tile/0/001")
        assert full.status_code == 200
        assert full.content == b"".join(reference.nodes[(0, i)] for i in range(256, 512))
        assert "immutable" in full.headers["cache-control"]
        partial = client.get("/api/v1/log/tiles/tile/0/002.p/48")
        assert partial.content == b"".join(reference.nodes[(0, i)] for i in range(512, 560))
        level1 = client.get("/api/v1/log/tiles/tile/1/000.p/2")
        assert level1.content == reference.nodes[(8, 0)] + reference.nodes[(8, 1)]
        bundle = client.get("/api/v1/log/tiles/tile/entries/000")
        assert tiles.decode_entry_bundle(bundle.content) == data[:256]
        assert client.get("/api/v1/log/tiles/tile/0/002").status_code == 404
        assert client.get("/api/v1/log/tiles/tile/0/002.p/49").status_code == 404
        cp = client.get("/api/v1/log/tiles/checkpoint")
        assert open_checkpoint(cp.text, env.ctx.keys.verifier).size == 560


class TestOps:
    def test_healthz_metrics_and_openapi(self, env: LogEnv, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok", "log_size": 2}
        with env.db.write() as session:
            service.append_event(session, event_type="case", event={"a": 1}, now=T0)
        metrics = client.get("/metrics").text
        assert "deletion_audit_log_pending_leaves 1.0" in metrics
        assert "deletion_audit_checkpoint_age_seconds" in metrics
        assert "deletion_audit_integrator_lag_seconds" in metrics
        spec = client.get("/openapi.json").json()
        assert set(spec["components"]["securitySchemes"]) == {"bearerToken", "httpSignature"}
        for path, ops in spec["paths"].items():
            for op in ops.values():
                assert "security" in op, f"{path} declares no authentication scheme"
        assert "400" in spec["paths"]["/api/v1/log/proof/inclusion"]["get"]["responses"]
