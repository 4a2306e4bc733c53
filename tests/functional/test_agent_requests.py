"""Signed agent requests to a real ``deletion-audit serve`` process over 127.0.0.1: the
signature's ``@target-uri`` as uvicorn sees it, replay refusal, ingest and its receipt."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from deletion_audit.clock import FixedClock
from tests.functional.test_serve import Running, start_server, stop
from tests.support.agents import declare_scope, enroll
from tests.support.log import LogEnv, make_log_env
from tests.support.world import make_world


@pytest.fixture
def live(tmp_path: Path, db_url: str) -> Iterator[LogEnv]:
    """An initialised log whose domain clock is the real one, as the served process's is."""
    log_env = make_log_env(tmp_path, db_url, FixedClock(datetime.now(UTC)))
    yield log_env
    log_env.db.dispose()


@pytest.fixture
def served(live: LogEnv, db_url: str) -> Iterator[Running]:
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("DELETION_AUDIT_")}
    running = start_server(["--db", db_url, "--data-dir", str(live.settings.data_dir)],
                           process_env, live.settings.data_dir)
    yield running
    stop(running)


@pytest.mark.slow
class TestSignedRequestsOverHttp:
    def test_enroll_heartbeat_replay_and_ingest(self, served: Running, live: LogEnv) -> None:
        world = make_world(live)
        with httpx.Client(base_url=served.base, timeout=10) as http:
            scope = declare_scope(http, world)
            agent = enroll(http, world, scope_ids=[scope["id"]])
            nonce = secrets.token_urlsafe(16)
            beat = {"outbox": 0, "dead_letters": 0}
            r = agent.post("/api/v1/agents/heartbeat", json=beat, nonce=nonce)
            assert r.status_code == 200, r.text
            r = agent.post("/api/v1/agents/heartbeat", json=beat, nonce=nonce)
            assert (r.status_code, r.json()["code"]) == (401, "replayed")
            signed = agent.sign_statement(agent.scan(
                seq=0, prev=None, scope=scope,
                finished_at=datetime.now(UTC) - timedelta(minutes=1)))
            first = agent.submit(signed)
            assert first.status_code == 201, first.text
            again = agent.submit(signed)
            assert (again.status_code, again.json()) == (201, first.json())
