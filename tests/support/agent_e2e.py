"""The world of the agent's end-to-end tests: a real ``deletion-audit serve`` process with a
case, a signed manifest and two declared scopes (a tree of real JPEG and MP4 files and a
SQLite table), a proxy that can hold requests in flight, and the agent's command line."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from deletion_audit.app import build_context
from deletion_audit.clock import FixedClock
from deletion_audit.config import Settings
from deletion_audit.core import manifest as mf
from deletion_audit.db import Database
from deletion_audit.models import Attestation
from tests.functional.test_serve import Running, start_server, stop
from tests.support.evidence import examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.world import World, make_world

AGENT = [sys.executable, "-m", "deletion_audit_agent"]


def jpeg(seed: int) -> bytes:
    """A real JPEG image, distinct per seed."""
    from PIL import Image

    image = Image.new("RGB", (32, 24), ((seed * 37) % 256, (seed * 91) % 256, seed % 256))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def mp4(seed: int) -> bytes:
    """A minimal ISO-BMFF file: an ``ftyp`` box (brand isom) and an ``mdat`` box."""
    ftyp = b"ftypisom" + b"\0\0\2\0" + b"isomiso2mp41"
    payload = hashlib.sha256(str(seed).encode()).digest() * 64
    return (len(ftyp) + 4).to_bytes(4, "big") + ftyp + \
        (len(payload) + 8).to_bytes(4, "big") + b"mdat" + payload


def _objects() -> tuple[list[bytes], list[bytes]]:
    return [jpeg(300 + i) for i in range(3)], [jpeg(400 + i) for i in range(2)]


# Manifest items that a PostgreSQL table and an S3 bucket still hold.
PG_ROWS, OBJECTS = _objects()


class HoldingProxy:
    """An HTTP proxy in front of the server that can hold the answers to statement
    submissions: the server stores the statement, the agent never hears back."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.recorded: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                # Host is kept: the agent signed @target-uri with the proxy's address.
                headers = [(k, v) for k, v in self.headers.items()
                           if k.lower() not in ("connection", "content-length")]
                proxy.recorded.append((self.command, self.path, headers, body))
                answer = httpx.request(self.command, proxy.upstream + self.path,
                                       headers=headers, content=body, timeout=30)
                if proxy.hold.is_set() and self.path.startswith("/api/v1/attestations"):
                    proxy.held.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                           "content-encoding"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = _forward
            do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def wait_until_scanning(state: Path, proc: subprocess.Popen[bytes],
                        timeout: float = 60) -> None:
    """Wait until the scan is really under way: it has fetched the manifest filter (the
    step before it hashes the tree), and it is still running."""
    deadline = time.monotonic() + timeout
    while not any((state / "filters").glob("*.bloom")):
        assert proc.poll() is None, "the scan ended before it fetched the filter"
        assert time.monotonic() < deadline, "the scan never fetched the manifest filter"
        time.sleep(0.01)
    assert proc.poll() is None, "the throttled scan should still be hashing"


@dataclass
class Setup:
    server: Running
    proxy: HoldingProxy
    world: World
    db: Database
    tree: Path
    table: Path
    scope_ids: list[int]
    leftovers: dict[str, Path]
    """Manifest items present in the tree, digest → file."""
    rows_present: int


def agent(args: list[str], config: Path, *, check: bool = False,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*AGENT, *args, "--config", str(config)], capture_output=True,
                         text=True, timeout=timeout, check=False)
    if check:
        assert out.returncode == 0, (out.stdout, out.stderr)
    return out


def write_config(path: Path, setup: Setup, state: Path, extra: str = "") -> Path:
    _, sql_id = setup.scope_ids
    path.write_text(f'''
server = "{setup.proxy.base}"
state_dir = "{state}"
retry_attempts = 2
retry_base_seconds = 0.05
{extra}

[scopes."{sql_id}"]
url = "sqlite:///{setup.table}"
''')
    return path


def build_tree(root: Path) -> tuple[dict[str, Path], list[bytes]]:
    """Files on the host; returns the leftovers (also in the manifest) and the other
    manifest contents (deleted earlier: never found)."""
    (root / "store-7" / "2024").mkdir(parents=True)
    (root / "store-7" / "clips").mkdir()
    leftovers: dict[str, Path] = {}
    for i in range(6):
        data = jpeg(i) if i % 2 else mp4(i)
        folder, suffix = ("2024", "jpg") if i % 2 else ("clips", "mp4")
        path = root / "store-7" / folder / f"f{i}.{suffix}"
        path.write_bytes(data)
        if i < 4:
            leftovers[hashlib.sha256(data).hexdigest()] = path
    (root / "store-7" / "link").symlink_to("/etc")
    gone = [jpeg(100 + i) for i in range(5)]
    return leftovers, gone


def build_table(path: Path) -> tuple[list[bytes], int]:
    faces = [jpeg(200 + i) for i in range(8)]
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE faces (id INTEGER PRIMARY KEY, jpeg TEXT)")
        conn.executemany("INSERT INTO faces VALUES (?, ?)",
                         [(i, base64.b64encode(f).decode()) for i, f in enumerate(faces)])
        conn.execute("INSERT INTO faces VALUES (99, NULL)")
    conn.close()
    # Rows 0..2 are manifest items still present.
    return faces[:3], 3


@dataclass
class Served:
    """A real server on its own data directory, and a case in it (the test's world)."""

    server: Running
    db: Database
    world: World


def serve_world(tmp_path: Path) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    env["DELETION_AUDIT_INTEGRATE_INTERVAL_SECONDS"] = "0.2"
    data = tmp_path / "data"
    server = start_server(["--data-dir", str(data)], env, tmp_path)
    settings = Settings(environment="test", data_dir=data)
    db = Database(settings.database_url)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    world = make_world(LogEnv(settings=settings, db=db, clock=clock,
                              ctx=build_context(settings, db=db, clock=clock)))
    return Served(server=server, db=db, world=world)


def register_manifest(http: httpx.Client, world: World, directory: Path,
                      contents: list[bytes]) -> None:
    """The examiner's signed manifest of ``contents``, registered by the prosecutor."""
    items = [mf.ManifestEntry(digest=hashlib.sha256(c).hexdigest(), kind="image",
                              size=len(c)) for c in contents]
    signed = write_signed(directory, examiner_key(world), case=world.case_number, items=items)
    r = http.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
        "manifest": ("manifest.jsonl", signed.path.read_bytes()),
        "envelope": ("manifest.dsse.json", json.dumps(signed.envelope).encode())})
    assert r.status_code == 201, r.text


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    served = serve_world(tmp_path)
    server, db, world = served.server, served.db, served.world
    http = httpx.Client(base_url=server.base, timeout=30)
    tree, table = tmp_path / "cams", tmp_path / "app.sqlite3"
    leftovers, gone = build_tree(tree)
    rows, rows_present = build_table(table)
    register_manifest(http, world, tmp_path, [p.read_bytes() for p in leftovers.values()]
                      + gone + rows + PG_ROWS + OBJECTS)
    scope_ids = []
    for name, kind, spec in [
        ("cams", "directory", {"root": str(tree)}),
        ("faces", "sql", {"table": "faces", "key_columns": ["id"], "content_column": "jpeg",
                          "encoding": "base64"}),
    ]:
        r = http.post(f"{world.url}/scopes", headers=world.company.headers, json={
            "name": name, "kind": kind, "spec": spec, "expects_data": True,
            "location_codes": ["SH-QP/NVR1"]})
        assert r.status_code == 201, r.text
        scope_ids.append(r.json()["id"])
    proxy = HoldingProxy(server.base)
    try:
        yield Setup(server=server, proxy=proxy, world=world, db=db, tree=tree, table=table,
                    scope_ids=scope_ids, leftovers=leftovers, rows_present=rows_present)
    finally:
        proxy.close()
        http.close()
        db.dispose()
        stop(server)


def issue_token(setup: Setup) -> str:
    r = httpx.post(f"{setup.server.base}{setup.world.url}/enrollment-tokens",
                   headers=setup.world.company.headers,
                   json={"scope_ids": setup.scope_ids, "expires_in_hours": 24})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def status(config: Path) -> dict[str, Any]:
    out = agent(["status", "--json"], config)
    return dict(json.loads(out.stdout))


def stored(setup: Setup) -> list[tuple[int, str]]:
    with setup.db.read() as session:
        rows = session.execute(select(Attestation.seq, Attestation.statement_id)
                               .order_by(Attestation.seq)).all()
    return [(int(seq), str(sid)) for seq, sid in rows]
