"""A real ``deletion-audit serve`` process and real ``deletion-audit-agent`` processes over
127.0.0.1: enroll (and refuse a token for another log), scan finding leftovers in a tree of
real JPEG and MP4 files and a real SQLite table, delete, clean scan, and a ``kill -9``
while a statement is in flight — restarted, nothing lost and nothing counted twice."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from deletion_audit.app import build_context
from deletion_audit.clock import FixedClock
from deletion_audit.config import Settings
from deletion_audit.core import manifest as mf
from deletion_audit.db import Database
from deletion_audit.models import Attestation, DeletedItem
from tests.functional.test_serve import Running, free_port, start_server, stop, wait_for
from tests.support.evidence import examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.s3 import S3Server, s3_server
from tests.support.world import World, make_world

AGENT = [sys.executable, "-m", "deletion_audit_agent"]
__all__ = ["s3_server"]  # the fixture, for this module's tests


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


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    env["DELETION_AUDIT_INTEGRATE_INTERVAL_SECONDS"] = "0.2"
    data = tmp_path / "data"
    server = start_server(["--data-dir", str(data)], env, tmp_path)
    settings = Settings(environment="test", data_dir=data)
    db = Database(settings.database_url)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    log_env = LogEnv(settings=settings, db=db, clock=clock,
                     ctx=build_context(settings, db=db, clock=clock))
    world = make_world(log_env)
    http = httpx.Client(base_url=server.base, timeout=30)
    tree, table = tmp_path / "cams", tmp_path / "app.sqlite3"
    leftovers, gone = build_tree(tree)
    rows, rows_present = build_table(table)
    contents = [p.read_bytes() for p in leftovers.values()] + gone + rows + PG_ROWS + OBJECTS
    items = [mf.ManifestEntry(digest=hashlib.sha256(c).hexdigest(), kind="image",
                              size=len(c)) for c in contents]
    key = examiner_key(world)
    signed = write_signed(tmp_path, key, case=world.case_number, items=items)
    r = http.post(f"{world.url}/manifests", headers=world.prosecutor.headers, files={
        "manifest": ("manifest.jsonl", signed.path.read_bytes()),
        "envelope": ("manifest.dsse.json", json.dumps(signed.envelope).encode())})
    assert r.status_code == 201, r.text
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


@pytest.mark.slow
class TestAgentEndToEnd:
    def test_enroll_scan_delete_rescan(self, setup: Setup, tmp_path: Path) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        token = issue_token(setup)

        forged = token[:-16] + "0123456789abcdef"
        refused = agent(["enroll", "--token", forged], config)
        assert refused.returncode == 1
        assert "refusing to trust" in refused.stderr
        assert not (tmp_path / "state" / "agent.key").exists()
        assert status(config)["enrolled"] is False

        agent(["enroll", "--token", token], config, check=True)
        assert (tmp_path / "state" / "agent.key").stat().st_mode & 0o777 == 0o600
        info = status(config)
        assert info["enrolled"]
        assert info["last_checkpoint_size"] >= 1
        assert {s["id"] for s in info["scopes"]} == set(setup.scope_ids)

        first = json.loads(agent(["scan", "--json"], config, check=True).stdout)["scans"]
        by_scope = {s["scope_id"]: s for s in first}
        cams, faces = (by_scope[str(i)] for i in setup.scope_ids)
        assert cams["present"] == len(setup.leftovers) == 4
        assert cams["objects"] == 7
        assert cams["skipped"] == {"symlink": 1}
        assert cams["coverage"] == "partial"
        assert cams["challenged"] is True
        assert faces["present"] == setup.rows_present
        assert faces["skipped"] == {"null-content": 1}
        assert cams["outbox"] == faces["outbox"] == 0
        # Skipped paths stay on the host, in the agent's own log.
        logs = " ".join(p.read_text() for p in (tmp_path / "state" / "scans").iterdir())
        assert str(setup.tree / "store-7" / "link") in logs

        dry = agent(["delete", "--scope", str(setup.scope_ids[0])], config, check=True)
        assert "dry run" in dry.stdout
        assert all(path.exists() for path in setup.leftovers.values())

        done = json.loads(agent(["delete", "--scope", str(setup.scope_ids[0]), "--yes",
                                 "--json"], config, check=True).stdout)
        assert done["deleted"] == 4
        assert done["failed"] == 0
        assert done["deletion_statements"] == 1
        assert done["rescan"]["present"] == 0
        assert not any(path.exists() for path in setup.leftovers.values())

        rows = json.loads(agent(["delete", "--scope", str(setup.scope_ids[1]), "--yes",
                                 "--json"], config, check=True).stdout)
        assert rows["deleted"] == setup.rows_present
        assert rows["rescan"]["present"] == 0

        # 2 scans, then per scope: a deletion and a clean scan. One chain, no gaps.
        assert [seq for seq, _ in stored(setup)] == list(range(6))
        info = status(config)
        assert info["outbox"] == 0
        assert info["dead_letters"] == []
        assert info["sent"] == 6

    def test_kill_9_while_a_statement_is_in_flight(self, setup: Setup, tmp_path: Path) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        setup.proxy.hold.set()
        proc = subprocess.Popen([*AGENT, "scan", "--scope", str(setup.scope_ids[0]),
                                 "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert setup.proxy.held.wait(60), "the agent never sent its statement"
            # The server stored it (and answered 201); the agent never heard back.
            wait_for(lambda: len(stored(setup)) == 1, 10, "the statement to be stored")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        info = status(config)
        assert info["outbox"] == 1
        assert info["sent"] == 0

        setup.proxy.hold.clear()
        setup.proxy.release.set()
        run = agent(["run", "--once"], config, check=True)
        assert '"event": "heartbeat"' in run.stderr
        info = status(config)
        assert info["outbox"] == 0
        assert info["sent"] == 1
        assert info["dead_letters"] == []
        (only,) = stored(setup)
        assert only[0] == 0

        # The next scan continues the chain at seq 1: the server saw no gap and no repeat.
        agent(["scan", "--scope", str(setup.scope_ids[0])], config, check=True)
        assert [seq for seq, _ in stored(setup)] == [0, 1]
        with setup.db.read() as session:
            assert session.scalar(select(func.count()).select_from(Attestation)) == 2

    def test_kill_9_mid_scan_leaves_no_trace_and_no_gap(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        slow = write_config(tmp_path / "slow.toml", setup, tmp_path / "state",
                            "throttle_bytes_per_second = 2000")
        agent(["enroll", "--token", issue_token(setup)], slow, check=True)
        proc = subprocess.Popen([*AGENT, "scan", "--scope", str(setup.scope_ids[0]),
                                 "--config", str(slow)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until_scanning(tmp_path / "state", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert status(slow)["outbox"] == 0
        assert stored(setup) == []
        fast = write_config(tmp_path / "fast.toml", setup, tmp_path / "state")
        agent(["scan", "--scope", str(setup.scope_ids[0])], fast, check=True)
        assert [seq for seq, _ in stored(setup)] == [0]

    def test_kill_9_mid_delete_loses_no_removal_and_counts_none_twice(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        # Throttled, the agent pauses after each removal (its I/O budget) before it notes
        # it: a kill -9 there leaves a file gone and only its written-ahead intent behind.
        slow = write_config(tmp_path / "slow.toml", setup, tmp_path / "state",
                            "throttle_bytes_per_second = 4000")
        agent(["enroll", "--token", issue_token(setup)], slow, check=True)
        cams = str(setup.scope_ids[0])
        proc = subprocess.Popen([*AGENT, "delete", "--scope", cams, "--yes",
                                 "--config", str(slow)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        files = list(setup.leftovers.values())
        try:
            wait_for(lambda: sum(not p.exists() for p in files) >= 2 or proc.poll() is not None,
                     60, "two leftovers to be removed")
            assert proc.poll() is None, "the throttled deletion ended before it was killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        gone = {d for d, p in setup.leftovers.items() if not p.exists()}
        assert 2 <= len(gone) < len(files)
        info = status(slow)
        # The last removal was cut off before its note: only its intent says so.
        assert (info["pending_deletions"], info["unresolved_deletions"]) == (len(gone) - 1, 1)
        assert stored(setup) == []

        fast = write_config(tmp_path / "fast.toml", setup, tmp_path / "state")
        done = json.loads(agent(["delete", "--scope", cams, "--yes", "--json"], fast,
                                check=True).stdout)
        assert done["deleted"] == len(files) - len(gone)
        assert done["rescan"]["present"] == 0
        assert not any(p.exists() for p in files)
        info = status(fast)
        assert (info["pending_deletions"], info["unresolved_deletions"]) == (0, 0)
        with setup.db.read() as session:
            counted = session.execute(select(DeletedItem.digest, func.count())
                                      .group_by(DeletedItem.digest)).all()
            kinds = session.execute(select(Attestation.seq, Attestation.predicate_type)
                                    .order_by(Attestation.seq)).all()
        # Every removed digest attested exactly once: those the crash cut off first (they
        # happened before the rest), then the rest, then the clean re-scan. No gap.
        assert {d.hex(): n for d, n in counted} == dict.fromkeys(setup.leftovers, 1)
        assert [(seq, kind.rsplit("/", 2)[1]) for seq, kind in kinds] == [
            (0, "deletion"), (1, "deletion"), (2, "scan")]

    def test_a_deletion_the_server_asks_for_runs_only_where_the_host_allows_it(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        cams = setup.scope_ids[0]
        base = f"{setup.server.base}{setup.world.url}/deletion-requests"
        r = httpx.post(base, headers=setup.world.prosecutor.headers,
                       json={"scope_id": cams, "reason": "检察建议：删除留存人脸图像"})
        assert r.status_code == 201, r.text

        refused = agent(["run", "--once"], config, check=True)
        assert '"event": "task_refused"' in refused.stderr
        assert all(p.exists() for p in setup.leftovers.values())
        assert stored(setup) == []

        allowed = write_config(tmp_path / "allowed.toml", setup, tmp_path / "state",
                               "allow_remote_delete = true")
        run = agent(["run", "--once"], allowed, check=True)
        assert '"kind": "delete"' in run.stderr, run.stderr
        assert not any(p.exists() for p in setup.leftovers.values())
        with setup.db.read() as session:
            deleted = set(session.execute(select(DeletedItem.digest)).scalars())
        assert {d.hex() for d in deleted} == set(setup.leftovers)
        listed = httpx.get(base, headers=setup.world.prosecutor.headers).json()["items"]
        assert [a["state"] for a in listed[0]["agents"]] == ["done"]
        # Done: the next beat has no task left.
        again = agent(["run", "--once"], allowed, check=True)
        assert '"tasks": 0' in again.stderr

    def test_run_enrolls_as_soon_as_the_server_answers(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        # The host starts before the server is reachable: `run` keeps trying to enroll.
        port = free_port()
        config = tmp_path / "agent.toml"
        config.write_text(f'''
server = "http://127.0.0.1:{port}"
state_dir = "{tmp_path / "state"}"
retry_attempts = 1
retry_base_seconds = 0.05
''')
        lines: list[str] = []
        token = {"DELETION_AUDIT_AGENT_TOKEN": issue_token(setup)}
        proc = subprocess.Popen([*AGENT, "run", "--config", str(config)],
                                env={**os.environ, **token},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                                  daemon=True)
        reader.start()
        proxy = None
        try:
            wait_for(lambda: sum('"event": "enroll_failed"' in ln for ln in lines) >= 2, 60,
                     "two failed enrollment attempts")
            assert proc.poll() is None, "run gave up instead of retrying"
            assert status(config)["enrolled"] is False
            proxy = HoldingProxy(setup.server.base, port=port)
            wait_for(lambda: any('"event": "heartbeat"' in ln for ln in lines), 60,
                     "the first heartbeat after enrolling")
            info = status(config)
            assert info["enrolled"] is True
            assert {s["id"] for s in info["scopes"]} == set(setup.scope_ids)
            assert any('"event": "enrolled"' in ln for ln in lines)
        finally:
            proc.kill()
            proc.wait(10)
            reader.join(10)
            proc.stderr.close()
            if proxy is not None:
                proxy.close()
        # A spent token is a refusal, not an outage: `run` stops at once and says why.
        other = tmp_path / "other.toml"
        other.write_text(config.read_text().replace(str(tmp_path / "state"),
                                                    str(tmp_path / "state2"))
                         .replace(str(port), setup.proxy.base.rsplit(":", 1)[1]))
        spent = agent(["run", "--once", "--enroll-token", "x" * 20 + ".0123456789abcdef"],
                      other)
        assert spent.returncode == 1
        assert "error:" in spent.stderr

    def test_outage_keeps_statements_until_the_server_is_back(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        setup.proxy.hold.set()
        proc = subprocess.Popen([*AGENT, "scan", "--scope", str(setup.scope_ids[1]),
                                 "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert setup.proxy.held.wait(60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        setup.proxy.close()  # the server is now unreachable for the agent
        start = time.monotonic()
        run = agent(["run", "--once"], config)
        assert run.returncode == 0
        assert "contact_failed" in run.stderr
        assert time.monotonic() - start < 30
        assert status(config)["outbox"] == 1

    def test_a_challenge_from_the_server_is_answered_by_run(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        from deletion_audit.hosts.challenges import issue_challenge
        from deletion_audit.models import Agent as AgentRow
        from deletion_audit.models import ChallengeOrigin

        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        agent_id = status(config)["agent_id"]
        with setup.db.write() as session:
            row = session.execute(select(AgentRow).where(AgentRow.public_id == agent_id)
                                  ).scalar_one()
            challenge = issue_challenge(
                session, agent=row, scope_id=setup.scope_ids[1], origin=ChallengeOrigin.REVIEW,
                ttl=timedelta(hours=1), issued_by=None, now=datetime.now(UTC))
            challenge_id = challenge.id
        run = agent(["run", "--once"], config, check=True)
        assert '"event": "task_done"' in run.stderr
        with setup.db.read() as session:
            answered = session.execute(select(Attestation.challenge_id, Attestation.scope_id)
                                       ).all()
        assert answered == [(challenge_id, setup.scope_ids[1])]

    def test_a_revoked_agent_is_refused_and_keeps_its_key(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        agent_id = status(config)["agent_id"]
        r = httpx.post(f"{setup.server.base}{setup.world.url}/agents/{agent_id}/revoke",
                       headers=setup.world.prosecutor.headers,
                       json={"kind": "compromised", "reason": "host reinstalled"})
        assert r.status_code == 200, r.text
        refused = agent(["scan"], config)
        assert refused.returncode == 1
        assert "403 revoked" in refused.stderr
        assert (tmp_path / "state" / "agent.key").exists()

    def test_a_decommissioned_agent_still_delivers_its_outbox(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        agent_id = status(config)["agent_id"]
        setup.proxy.hold.set()
        proc = subprocess.Popen([*AGENT, "scan", "--scope", str(setup.scope_ids[1]),
                                 "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert setup.proxy.held.wait(60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        setup.proxy.hold.clear()
        setup.proxy.release.set()
        r = httpx.post(f"{setup.server.base}{setup.world.url}/agents/{agent_id}/revoke",
                       headers=setup.world.prosecutor.headers,
                       json={"kind": "decommissioned", "reason": "server retired"})
        assert r.status_code == 200, r.text
        run = agent(["run", "--once"], config, check=True)
        assert "contact_failed" in run.stderr  # the heartbeat is refused: revoked
        info = status(config)
        assert info["outbox"] == 0
        assert info["sent"] == 1
        assert info["dead_letters"] == []

    def test_a_replayed_request_is_refused(self, setup: Setup, tmp_path: Path) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        agent(["run", "--once"], config, check=True)
        method, path, headers, body = next(
            r for r in setup.proxy.recorded if r[1] == "/api/v1/agents/heartbeat")
        again = httpx.request(method, setup.proxy.base + path, headers=headers, content=body)
        assert again.status_code == 401
        assert again.json()["code"] == "replayed"

    def test_a_restored_state_directory_forks_and_is_dead_lettered(
        self, setup: Setup, tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "agent.toml", setup, tmp_path / "state")
        agent(["enroll", "--token", issue_token(setup)], config, check=True)
        shutil.copytree(tmp_path / "state", tmp_path / "backup")
        agent(["scan", "--scope", str(setup.scope_ids[1])], config, check=True)
        shutil.rmtree(tmp_path / "state")
        shutil.copytree(tmp_path / "backup", tmp_path / "state")
        forked = agent(["scan", "--scope", str(setup.scope_ids[1])], config)
        assert forked.returncode == 1
        assert "refused 1 statement" in forked.stderr
        (dead,) = status(config)["dead_letters"]
        assert (dead["seq"], dead["status"], dead["code"]) == (0, 409, "fork")
        assert len(stored(setup)) == 1


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
