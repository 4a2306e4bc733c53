"""A throwaway PostgreSQL cluster for the tests.

PostgreSQL refuses to run as root, and CI runs as root: only the server processes run as an
unprivileged system user (created if missing), in a directory that user owns. The tests
themselves stay as they are and connect over 127.0.0.1 on a random free port.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PG_USER = "deletion-audit-pg"


def _find(binary: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"{binary} not found: install PostgreSQL's server (Debian: postgresql) — "
        "the project's test command does this on a fresh machine"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(args: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(args)
    return ["runuser", "-u", PG_USER, "--", *args]


def _ensure_server_user() -> None:
    if os.geteuid() != 0:
        return
    probe = subprocess.run(["id", "-u", PG_USER], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True, capture_output=True,
        )


@dataclass
class PostgresServer:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PostgresServer:
        _ensure_server_user()
        root = Path(tempfile.mkdtemp(prefix="deletion-audit-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, user=PG_USER)
        server = cls(root=root, port=_free_port())
        run = lambda *a: subprocess.run(  # noqa: E731
            _as_server_user(a), check=True, capture_output=True, cwd=root
        )
        run(_find("initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync", "--no-instructions")
        opts = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            run(_find("pg_ctl"), "-D", str(server.data), "-o", opts, "-l",
                str(root / "server.log"), "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as exc:
            log_file = root / "server.log"
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r}\n{log}") from exc
        return server

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([_find("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            check=False, capture_output=True, cwd=self.root,
        )
        shutil.rmtree(self.root, ignore_errors=True)
