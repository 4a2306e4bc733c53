"""The agent under faults and server requests, as real processes over 127.0.0.1: ``kill -9``
while a statement is in flight, mid-scan and mid-delete (restarted: nothing lost, nothing
counted twice, no gap in the chain), a deletion the server asks for, and ``run`` enrolling
as soon as the server answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from deletion_audit.models import Attestation, DeletedItem
from tests.functional.test_serve import free_port, wait_for
from tests.support.agent_e2e import (
    AGENT,
    HoldingProxy,
    Setup,
    agent,
    issue_token,
    setup,
    status,
    stored,
    wait_until_scanning,
    write_config,
)

__all__ = ["setup"]  # fixtures, for this module's tests


@pytest.mark.slow
class TestAgentFaultsAndRequests:
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
