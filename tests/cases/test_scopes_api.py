"""Scopes, data flows and bindings over HTTP, on both engines."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.models import AgentStatus, Event, LogLeaf, PartyRole
from tests.support.log import LogEnv
from tests.support.world import World, add_agent

SQL = {"table": "public.visitor_faces", "key_columns": ["visit_id", "seq"],
       "content_column": "jpeg", "encoding": "base64", "filter": "store_id = 17"}


def base(world: World) -> str:
    return f"/api/v1/cases/{world.case_id}"


def declare(client: TestClient, world: World, **body: Any) -> Any:
    return client.post(f"{base(world)}/scopes", headers=world.company.headers, json=body)


class TestDeclareScope:
    def test_sql_scope_with_its_spec_digest(self, client: TestClient, world: World) -> None:
        r = declare(client, world, name="camera-db", kind="sql", spec=SQL,
                    location_codes=["SH-QP/CAM-DB", "SH-QP/CAM-DB"],
                    timestamp_field="captured_at")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["spec"] == SQL
        assert body["spec_digest"] == hashlib.sha256(rfc8785.dumps(SQL)).hexdigest()
        assert body["location_codes"] == ["SH-QP/CAM-DB"]
        assert body["party_id"] == world.parties[PartyRole.RESPONDENT]
        assert body["expects_data"] is True

    def test_object_store_and_directory(self, client: TestClient, world: World) -> None:
        r = declare(client, world, name="oss", kind="object_store", expects_data=False, spec={
            "endpoint": "https://oss-cn-shanghai.aliyuncs.com", "bucket": "sales-faces",
            "prefix": "daily/"})
        assert r.status_code == 201
        assert r.json()["expects_data"] is False
        r = declare(client, world, name="nas", kind="directory", spec={"root": "/srv/faces"})
        assert r.json()["spec"] == {"root": "/srv/faces", "exclude": []}

    def test_vendor_declares_for_its_own_party(self, client: TestClient, world: World) -> None:
        r = client.post(f"{base(world)}/scopes", headers=world["vendor-officer"].headers,
                        json={"name": "vendor-nas", "kind": "directory",
                              "spec": {"root": "/data"}})
        assert r.json()["party_id"] == world.parties[PartyRole.VENDOR]

    @pytest.mark.parametrize(
        ("kind", "spec", "extra", "message"),
        [
            ("directory", {"root": "relative/path"}, {}, "root"),
            ("directory", {"root": "/x", "unknown": 1}, {}, "unknown"),
            ("sql", {**SQL, "table": "faces; drop table x"}, {}, "table"),
            ("sql", {**SQL, "key_columns": []}, {}, "key_columns"),
            ("sql", {**SQL, "encoding": "rot13"}, {}, "encoding"),
            ("object_store", {"endpoint": "ftp://x", "bucket": "abc"}, {}, "endpoint"),
            ("object_store", {"endpoint": "https://x", "bucket": "A"}, {}, "bucket"),
            ("directory", {"root": "/x"}, {"location_codes": ["has space"]}, "location_codes"),
            ("directory", {"root": "/x"}, {"timestamp_field": "a b"}, "timestamp_field"),
        ],
    )
    def test_bad_specs_are_422_naming_the_field(
        self, client: TestClient, world: World, kind: str, spec: dict[str, Any],
        extra: dict[str, Any], message: str,
    ) -> None:
        r = declare(client, world, name="s", kind=kind, spec=spec, **extra)
        assert r.status_code == 422
        assert message in r.json()["message"]

    def test_duplicate_name_is_409(self, client: TestClient, world: World) -> None:
        declare(client, world, name="nas", kind="directory", spec={"root": "/a"})
        r = declare(client, world, name="nas", kind="directory", spec={"root": "/b"})
        assert r.status_code == 409

    def test_scope_event_is_logged_restricted(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        r = declare(client, world, name="nas", kind="directory", spec={"root": "/srv/faces"},
                    location_codes=["SH-QP/NAS1"])
        leaf = client.get(f"/api/v1/log/entries/{self._index(env, r.json()['leaf_hash'])}")
        # The public leaf carries a commitment, not the path or the location code.
        assert "commitment" in leaf.json()["leaf"]
        assert "/srv/faces" not in leaf.text
        with env.db.read() as session:
            body = session.execute(select(Event.body).where(Event.type == "scope")).scalar_one()
        assert body["specDigest"] == r.json()["spec_digest"]

    def _index(self, env: LogEnv, leaf_hash: str) -> int:
        env.integrate()
        with env.db.read() as session:
            idx = session.execute(select(LogLeaf.idx).where(
                LogLeaf.leaf_hash == bytes.fromhex(leaf_hash))).scalar_one()
        assert idx is not None
        return idx


class TestDataFlows:
    def test_flows_and_their_coverage(self, client: TestClient, world: World) -> None:
        sid = declare(client, world, name="oss", kind="object_store", spec={
            "endpoint": "https://oss.example.com", "bucket": "faces"}).json()["id"]
        url = f"{base(world)}/data-flows"
        h = world.company.headers
        covered = client.post(url, headers=h, json={
            "kind": "cloud_upload", "description": "售楼处每日上传云端",
            "destination": "oss://faces", "scope_id": sid})
        assert covered.json()["coverage"] == "scope"
        vendor = client.post(url, headers=h, json={
            "kind": "vendor", "description": "摄像头供应商分析", "destination": "供应商机房",
            "vendor_party_id": world.parties[PartyRole.VENDOR]})
        assert vendor.json()["coverage"] == "vendor_statement"
        bare = client.post(url, headers=h, json={
            "kind": "backup", "description": "磁带备份", "destination": "异地"})
        assert bare.json()["coverage"] == "none"
        listed = client.get(url, headers=world.prosecutor.headers).json()["items"]
        assert [f["coverage"] for f in listed] == ["scope", "vendor_statement", "none"]

    def test_foreign_scope_or_non_vendor_party_is_422(
        self, client: TestClient, world: World
    ) -> None:
        url = f"{base(world)}/data-flows"
        r = client.post(url, headers=world.company.headers, json={
            "kind": "backup", "description": "d", "destination": "x", "scope_id": 999})
        assert r.status_code == 422
        r = client.post(url, headers=world.company.headers, json={
            "kind": "vendor", "description": "d", "destination": "x",
            "vendor_party_id": world.parties[PartyRole.CUSTODIAN]})
        assert r.status_code == 422
        assert "not a vendor party" in r.json()["message"]


class TestBindings:
    def test_several_agents_bind_unbind_and_history(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        sid = declare(client, world, name="nas", kind="directory",
                      spec={"root": "/srv"}).json()["id"]
        company_agent = add_agent(world)
        examiner_agent = add_agent(world, party=PartyRole.FORENSIC_LAB)
        url = f"{base(world)}/scopes/{sid}/bindings"
        h = world.prosecutor.headers
        for agent in (company_agent, examiner_agent):
            r = client.post(url, headers=h, json={"agent_id": agent})
            assert r.status_code == 201, r.text
        assert client.post(url, headers=h, json={"agent_id": company_agent}).status_code == 409
        r = client.delete(f"{url}/{company_agent}", headers=h)
        assert r.status_code == 200
        assert r.json()["unbound_at"] is not None
        assert client.delete(f"{url}/{company_agent}", headers=h).status_code == 404
        # Bound again after unbinding: the history keeps both rows.
        assert client.post(url, headers=h, json={"agent_id": company_agent}).status_code == 201
        rows = client.get(url, headers=world.company.headers).json()["items"]
        assert [(b["agent_id"], b["unbound_at"] is None) for b in rows] == [
            (company_agent, False), (examiner_agent, True), (company_agent, True)]
        with env.db.read() as session:
            actions = session.execute(
                select(Event.body).where(Event.type == "binding").order_by(Event.id)
            ).scalars().all()
        assert [a["action"] for a in actions] == ["bound", "bound", "unbound", "bound"]

    def test_unknown_agent_is_404_and_inactive_agent_409(
        self, client: TestClient, world: World
    ) -> None:
        sid = declare(client, world, name="nas", kind="directory",
                      spec={"root": "/srv"}).json()["id"]
        url = f"{base(world)}/scopes/{sid}/bindings"
        r = client.post(url, headers=world.prosecutor.headers, json={"agent_id": "agt_nope"})
        assert r.status_code == 404
        assert "no agent" in r.json()["message"]
        retired = add_agent(world, status=AgentStatus.DECOMMISSIONED)
        r = client.post(url, headers=world.prosecutor.headers, json={"agent_id": retired})
        assert r.status_code == 409

    def test_unknown_scope_is_404(self, client: TestClient, world: World) -> None:
        agent = add_agent(world)
        r = client.post(f"{base(world)}/scopes/999/bindings", headers=world.prosecutor.headers,
                        json={"agent_id": agent})
        assert r.status_code == 404
