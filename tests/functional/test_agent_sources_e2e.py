"""The agent's other sources for real: rows of a PostgreSQL table and objects in an S3 bucket
(a SeaweedFS server run by the tests), scanned and deleted through a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.agent_e2e import (
    OBJECTS,
    PG_ROWS,
    Setup,
    agent,
    jpeg,
    setup,
)
from tests.support.s3 import S3Server, s3_server

__all__ = ["s3_server", "setup"]  # fixtures, for this module's tests


def declare(http: httpx.Client, setup: Setup, s3_server: S3Server) -> tuple[list[int], str]:
    """A SQL scope on PostgreSQL and an object-store scope, and a token binding both."""
    ids = []
    for name, kind, spec in [
        ("pg", "sql", {"table": "app.faces", "key_columns": ["store", "id"],
                       "content_column": "photo"}),
        ("bucket", "object_store", {"endpoint": s3_server.endpoint, "bucket": "cams",
                                    "prefix": "store-7/"}),
    ]:
        r = http.post(f"{setup.world.url}/scopes", json={
            "name": name, "kind": kind, "spec": spec, "expects_data": True,
            "location_codes": ["SH-QP/DB1"]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = http.post(f"{setup.world.url}/enrollment-tokens", json={"scope_ids": ids})
    assert r.status_code == 201, r.text
    return ids, str(r.json()["token"])


@pytest.mark.slow
class TestAgentOnPostgresAndS3:
    def test_scan_and_delete_rows_and_objects(
        self, setup: Setup, tmp_path: Path, s3_server: S3Server, pg_db_url: str
    ) -> None:
        import psycopg

        pg_url = pg_db_url.replace("postgresql://", "postgresql+psycopg://")
        with psycopg.connect(pg_db_url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA app")
            conn.execute("CREATE TABLE app.faces (store text, id int, photo bytea, "
                         "PRIMARY KEY (store, id))")
            for i, data in enumerate([*PG_ROWS, jpeg(999)]):
                conn.execute("INSERT INTO app.faces VALUES ('s7', %s, %s)", (i, data))
        s3: Any = s3_server.client()
        s3.create_bucket(Bucket="cams")
        for i, data in enumerate([*OBJECTS, jpeg(998)]):
            s3.put_object(Bucket="cams", Key=f"store-7/{i}.jpg", Body=data)
        with httpx.Client(base_url=setup.server.base,
                          headers=setup.world.company.headers) as http:
            ids, token = declare(http, setup, s3_server)
        config = tmp_path / "agent.toml"
        config.write_text(f'''
server = "{setup.server.base}"
state_dir = "{tmp_path / 'state'}"

[scopes."{ids[0]}"]
url = "{pg_url}"

[scopes."{ids[1]}"]
access_key_id = "{s3_server.access_key_id}"
secret_access_key = "{s3_server.secret_access_key}"
''')
        agent(["enroll", "--token", token], config, check=True)
        scans = json.loads(agent(["scan", "--json"], config, check=True).stdout)["scans"]
        assert [(s["objects"], s["present"]) for s in scans] == [(4, 3), (3, 2)]
        for scope_id, removed in zip(ids, (3, 2), strict=True):
            done = json.loads(agent(["delete", "--scope", str(scope_id), "--yes", "--json"],
                                    config, check=True).stdout)
            assert done["deleted"] == removed
            assert done["rescan"]["present"] == 0
            assert done["rescan"]["objects"] == 1
        with psycopg.connect(pg_db_url) as conn:
            assert conn.execute("SELECT count(*) FROM app.faces").fetchone() == (1,)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="cams")["Contents"]] == \
            ["store-7/2.jpg"]
