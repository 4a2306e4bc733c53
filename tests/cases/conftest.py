from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deletion_audit.app import create_app
from deletion_audit.clock import FixedClock
from tests.conftest import T0
from tests.support.log import LogEnv, make_log_env
from tests.support.world import World, make_world


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[LogEnv]:
    log_env = make_log_env(tmp_path, db_url, FixedClock(T0))
    yield log_env
    log_env.db.dispose()


@pytest.fixture
def client(env: LogEnv) -> Iterator[TestClient]:
    with TestClient(create_app(env.ctx, run_jobs=False)) as c:
        yield c


@pytest.fixture
def world(env: LogEnv) -> World:
    return make_world(env)
