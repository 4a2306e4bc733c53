"""The case status machine: the table itself, and the endpoint with its logged changes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.cases.status import BACKWARD, TRANSITIONS, check_transition
from deletion_audit.errors import Conflict, Unprocessable
from deletion_audit.models import CaseStatus, Event
from tests.support.log import LogEnv
from tests.support.world import World

S = CaseStatus


class TestTransitionTable:
    def test_forward_path_and_ways_back(self) -> None:
        assert TRANSITIONS[S.OPEN] == (S.REMEDIATING,)
        assert S.REMEDIATING in TRANSITIONS[S.MONITORING]
        assert S.REMEDIATING in TRANSITIONS[S.VERIFYING]
        assert TRANSITIONS[S.CLOSED] == (S.REMEDIATING,)
        assert set(TRANSITIONS) == set(CaseStatus)

    def test_every_backward_move_is_in_the_table(self) -> None:
        for current, target in BACKWARD:
            assert target in TRANSITIONS[current]

    def test_invalid_transition_names_the_allowed_ones(self) -> None:
        with pytest.raises(Conflict, match="allowed from monitoring: closed, remediating"):
            check_transition(S.MONITORING, S.VERIFYING, None)

    def test_going_back_needs_a_reason(self) -> None:
        with pytest.raises(Unprocessable, match="needs a reason"):
            check_transition(S.MONITORING, S.REMEDIATING, "  ")
        check_transition(S.MONITORING, S.REMEDIATING, "回头看发现备份中仍有人脸")


class TestStatusEndpoint:
    def _move(self, client: TestClient, world: World, status: str,
              reason: str | None = None) -> tuple[int, dict[str, object]]:
        r = client.post(f"/api/v1/cases/{world.case_id}/status",
                        headers=world.prosecutor.headers,
                        json={"status": status, "reason": reason})
        return r.status_code, r.json()

    def test_full_life_with_a_reopening(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        for status in ("remediating", "verifying", "monitoring"):
            assert self._move(client, world, status)[0] == 200
        assert self._move(client, world, "remediating", "回头看发现数据再现")[0] == 200
        for status in ("verifying", "monitoring", "closed"):
            assert self._move(client, world, status)[0] == 200
        code, body = self._move(client, world, "remediating", "供应商处发现副本")
        assert code == 200
        assert body["status"] == "remediating"
        with env.db.read() as session:
            bodies = session.execute(
                select(Event.body).where(Event.type == "case-status").order_by(Event.id)
            ).scalars().all()
        assert len(bodies) == 8
        assert bodies[-1]["reopening"] is True
        assert bodies[-1]["reason"] == "供应商处发现副本"
        assert bodies[0]["reopening"] is False

    def test_invalid_transition_is_409_naming_the_allowed(
        self, client: TestClient, world: World
    ) -> None:
        code, body = self._move(client, world, "closed")
        assert code == 409
        assert body["allowed"] == ["remediating"]
        assert "remediating" in str(body["message"])

    def test_same_status_is_409(self, client: TestClient, world: World) -> None:
        assert self._move(client, world, "open")[0] == 409

    def test_reopening_without_a_reason_is_422(self, client: TestClient, world: World) -> None:
        for status in ("remediating", "verifying", "monitoring", "closed"):
            self._move(client, world, status)
        code, body = self._move(client, world, "remediating")
        assert code == 422
        assert "reason" in str(body["message"])

    def test_unknown_status_is_422(self, client: TestClient, world: World) -> None:
        assert self._move(client, world, "archived")[0] == 422
