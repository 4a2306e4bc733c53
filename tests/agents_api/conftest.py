"""Fixtures of the agent API tests (``env``, ``client`` and ``world`` come from
tests/conftest.py): a declared scope and an agent enrolled for it through the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.world import World


@pytest.fixture
def scope(client: TestClient, world: World) -> dict[str, Any]:
    return declare_scope(client, world)


@pytest.fixture
def agent(client: TestClient, world: World, scope: dict[str, Any]) -> AgentClient:
    return enroll(client, world, scope_ids=[scope["id"]])
