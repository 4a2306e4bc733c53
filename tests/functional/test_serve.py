"""``deletion-audit serve`` as a real process on 127.0.0.1, on both engines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deletion_audit.config import Settings
from deletion_audit.core.checkpoint import open_checkpoint
from deletion_audit.core.note import NoteVerifier
from deletion_audit.db import Database
from deletion_audit.log import service
from tests.conftest import T0

CLI = [sys.executable, "-m", "deletion_audit"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Running:
    proc: subprocess.Popen[str]
    base: str
    first_lines: list[str]


def start_server(args: list[str], env: dict[str, str], cwd: Path) -> Running:
    port = free_port()
    with (cwd / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    assert proc.stdout is not None
    # The command prints its banner before the server listens.
    for _ in range(2):
        lines.append(proc.stdout.readline())

    def up() -> bool:
        if proc.poll() is not None:
            rest = proc.stdout.read() if proc.stdout else ""
            log = (cwd / "server.log").read_text()
            raise AssertionError(f"server exited: {lines} {rest} {log}")
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, 30, "the server to answer /healthz")
    return Running(proc=proc, base=base, first_lines=lines)


def stop(running: Running) -> None:
    running.proc.send_signal(signal.SIGINT)
    try:
        running.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        running.proc.wait()
    if running.proc.stdout is not None:
        running.proc.stdout.close()


@pytest.fixture
def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    e["DELETION_AUDIT_INTEGRATE_INTERVAL_SECONDS"] = "0.2"
    return e


@pytest.fixture
def embedded(tmp_path: Path, env: dict[str, str]) -> Iterator[Running]:
    running = start_server(["--data-dir", str(tmp_path / "data")], env, tmp_path)
    yield running
    stop(running)


def grow_and_watch(db_url: str, base: str, n: int) -> int:
    """Append events straight into the database; return the size the server then signs."""
    db = Database(db_url)
    with db.write() as session:
        for i in range(n):
            service.append_event(session, event_type="challenge", event={"i": i}, now=T0)
    db.dispose()
    verifier = NoteVerifier.from_vkey(httpx.get(base + "/api/v1/log/key").text.strip())
    sizes: list[int] = []

    def signed() -> bool:
        note = httpx.get(base + "/api/v1/log/checkpoint").text
        sizes.append(open_checkpoint(note, verifier).size)
        return sizes[-1] >= 2 + n

    wait_for(signed, 10, "the integrator to sign the grown tree")
    return sizes[-1]


@pytest.mark.slow
class TestServeEmbedded:
    def test_fresh_data_dir_serves_docs_and_a_signed_log(
        self, embedded: Running, tmp_path: Path
    ) -> None:
        assert any("/docs" in line for line in embedded.first_lines)
        assert httpx.get(embedded.base + "/docs").status_code == 200
        data = tmp_path / "data"
        for key in ("log.key", "service.key"):
            assert (data / key).stat().st_mode & 0o777 == 0o600
        url = Settings(data_dir=data).database_url
        assert grow_and_watch(url, embedded.base, 5) == 7
        # The file outside the database is written just after the commit that the API serves.
        wait_for(lambda: (data / "checkpoint").read_text().startswith(
            Settings().log_origin + "\n7\n"), 10, "the checkpoint file to reach size 7")

    def test_log_verify_cli_on_the_served_data(
        self, embedded: Running, tmp_path: Path, env: dict[str, str]
    ) -> None:
        data = tmp_path / "data"
        grow_and_watch(Settings(data_dir=data).database_url, embedded.base, 3)
        out = subprocess.run([*CLI, "log", "verify", "--data-dir", str(data)], env=env,
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert "5 leaves" in out.stdout


@pytest.mark.slow
class TestServeWorkers:
    def test_two_worker_processes_share_the_embedded_database(
        self, tmp_path: Path, env: dict[str, str]
    ) -> None:
        data = tmp_path / "data"
        running = start_server(["--data-dir", str(data), "--workers", "2"], env, tmp_path)
        try:
            def workers() -> list[str]:
                out = subprocess.run(["pgrep", "-P", str(running.proc.pid)],
                                     capture_output=True, text=True, check=False)
                return out.stdout.split()

            wait_for(lambda: len(workers()) >= 2, 30, "two worker processes")
            # The jobs run in the worker holding the scheduler's lease: the grown tree is
            # signed, once.
            url = Settings(data_dir=data).database_url
            assert grow_and_watch(url, running.base, 5) == 7
            with httpx.Client(base_url=running.base) as http:
                answers = [http.get("/api/v1/log/checkpoint").status_code for _ in range(20)]
            assert answers == [200] * 20
        finally:
            stop(running)


@pytest.mark.slow
class TestServePostgres:
    def test_upgrade_init_serve(self, tmp_path: Path, env: dict[str, str], pg_db_url: str) -> None:
        db_url = pg_db_url
        data = tmp_path / "keys"
        common = ["--db", db_url, "--data-dir", str(data)]
        init = subprocess.run([*CLI, "log", "init", "--origin", "audit.test/log", *common],
                              env=env, capture_output=True, text=True, check=False)
        assert init.returncode == 0, init.stderr
        again = subprocess.run([*CLI, "log", "init", *common], env=env, capture_output=True,
                               text=True, check=False)
        assert again.returncode == 1
        assert "runs once" in again.stderr
        running = start_server(common, env, tmp_path)
        try:
            assert grow_and_watch(db_url, running.base, 4) == 6
        finally:
            stop(running)

    def test_refuses_to_start_on_a_foreign_key(
        self, tmp_path: Path, env: dict[str, str], pg_db_url: str
    ) -> None:
        db_url = pg_db_url
        data = tmp_path / "keys"
        common = ["--db", db_url, "--data-dir", str(data)]
        subprocess.run([*CLI, "log", "init", *common], env=env, check=True, capture_output=True)
        (data / "log.key").unlink()
        subprocess.run([*CLI, "keygen", str(data / "log.key")], env=env, check=True,
                       capture_output=True)
        out = subprocess.run([*CLI, "serve", "--port", str(free_port()), *common], env=env,
                             capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 1
        assert "not this database's log key" in out.stderr
