"""A real ``deletion-audit serve`` process and real ``deletion-audit-agent`` processes over
127.0.0.1: enroll (and refuse a token for another log), scan finding leftovers in a tree of
real JPEG and MP4 files and a real SQLite table, delete, clean scan, and a ``kill -9``
while a statement is in flight — restarted, nothing lost and nothing counted twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from deletion_audit.models import Attestation
from tests.support.agent_e2e import (
    AGENT,
    Setup,
    agent,
    issue_token,
    setup,
    status,
    stored,
    write_config,
)

__all__ = ["setup"]  # fixtures, for this module's tests


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
