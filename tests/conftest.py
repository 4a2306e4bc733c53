"""Shared fixtures: both database engines, for real, and an initialised log."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from deletion_audit.app import create_app
from deletion_audit.clock import FixedClock
from tests.support.log import LogEnv, make_log_env
from tests.support.postgres import PostgresServer
from tests.support.world import World, make_world

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ENGINES = ["sqlite", "postgresql"]
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    yield server
    server.stop()


def _migrate(url: str) -> None:
    from deletion_audit import migrations
    from deletion_audit.db import make_engine

    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    import psycopg

    name = "da_template"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _migrate(postgres.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated PostgreSQL database (for tests that are about PostgreSQL)."""
    import psycopg

    server: PostgresServer = request.getfixturevalue("postgres")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield server.url(name)
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database on each engine, removed afterwards."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "db.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    yield request.getfixturevalue("pg_db_url")


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[LogEnv]:
    """An initialised log and its application context, on each engine, at time T0."""
    log_env = make_log_env(tmp_path, db_url, FixedClock(T0))
    yield log_env
    log_env.db.dispose()


@pytest.fixture
def client(env: LogEnv) -> Iterator[TestClient]:
    with TestClient(create_app(env.ctx, run_jobs=False)) as c:
        yield c


@pytest.fixture
def world(env: LogEnv) -> World:
    """People in every case role, with tokens, and a case holding them all."""
    return make_world(env)
