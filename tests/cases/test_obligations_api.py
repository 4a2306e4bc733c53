"""Obligations, deadlines, waivers, states and documents over HTTP, on both engines."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.models import DocumentContent, Event
from tests.support.log import LogEnv
from tests.support.world import World

REPLY = {"start_event": "检察建议书送达", "served_on": "2026-03-02", "preset": "reply-2-months"}
LETTER = b"%PDF-1.4 undertaking letter"


def url(world: World, suffix: str = "") -> str:
    return f"/api/v1/cases/{world.case_id}/obligations{suffix}"


def set_obligation(client: TestClient, world: World, **body: Any) -> dict[str, Any]:
    r = client.post(url(world), headers=world.prosecutor.headers, json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def submit(client: TestClient, world: World, oid: int, data: bytes = LETTER,
           media_type: str = "application/pdf") -> Any:
    return client.post(url(world, f"/{oid}/documents"), headers=world.company.headers,
                       files={"file": ("承诺书.pdf", data, media_type)})


class TestSetObligation:
    def test_preset_deadline_is_derived(self, client: TestClient, world: World) -> None:
        body = set_obligation(client, world, kind="document", title="书面回复",
                              details={"document_kind": "reply"}, deadline=REPLY)
        assert body["state"] == "pending"
        # 2 May 2026 falls in the Labour Day holiday: the period ends on 6 May, 24:00 Beijing.
        assert body["deadline"]["last_day"] == "2026-05-06"
        assert body["due_at"] == "2026-05-06T16:00:00Z"
        assert body["due_provisional"] is False
        assert body["deadline"]["preset"] == "reply-2-months"

    def test_explicit_working_day_period(self, client: TestClient, world: World) -> None:
        body = set_obligation(client, world, kind="delete-manifest", title="永久删除", deadline={
            "start_event": "磋商协议签署", "served_on": "2026-09-28", "amount": 5,
            "unit": "working_days"})
        assert body["deadline"]["last_day"] == "2026-10-10"
        assert body["state"] == "pending"

    def test_provisional_beyond_holiday_data(self, client: TestClient, world: World) -> None:
        body = set_obligation(client, world, kind="custody-until", title="封存备份到期销毁",
                              details={"medium": "sealed disk #1"}, deadline={
                                  "start_event": "疫苗有效期届满", "served_on": "2027-06-30",
                                  "amount": 0, "unit": "days"})
        assert body["due_provisional"] is True
        assert body["state"] == "in_force"

    def test_retention_needs_no_deadline(self, client: TestClient, world: World) -> None:
        body = set_obligation(client, world, kind="retention", title="到访后24小时内删除",
                              details={"max_age_hours": 24})
        assert body["deadline"] is None
        assert body["due_at"] is None

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"kind": "document", "title": "t"}, "needs a deadline"),
            ({"kind": "retention", "title": "t"}, "max_age_hours"),
            ({"kind": "retention", "title": "t", "details": {"max_age_hours": 24, "x": 1}},
             "x"),
            ({"kind": "document", "title": "t", "deadline": {**REPLY, "preset": "nope"}},
             "unknown deadline preset"),
            ({"kind": "document", "title": "t", "deadline": {**REPLY, "amount": 3}},
             "preset"),
            ({"kind": "document", "title": "t",
              "deadline": {"start_event": "s", "served_on": "2026-03-02"}}, "preset"),
            ({"kind": "document", "title": "t",
              "deadline": {"start_event": "s", "served_on": "2026-02-30", "amount": 1,
                           "unit": "days"}}, "served_on"),
            ({"kind": "promise", "title": "t"}, "kind"),
        ],
    )
    def test_bad_input_is_422_with_a_message(
        self, client: TestClient, world: World, body: dict[str, Any], message: str
    ) -> None:
        r = client.post(url(world), headers=world.prosecutor.headers, json=body)
        assert r.status_code == 422
        assert message in r.json()["message"]

    def test_list_and_get(self, client: TestClient, world: World) -> None:
        first = set_obligation(client, world, kind="document", title="a", deadline=REPLY)
        set_obligation(client, world, kind="document", title="b", deadline=REPLY)
        page = client.get(url(world), headers=world.witness.headers,
                          params={"limit": 1}).json()
        assert [o["title"] for o in page["items"]] == ["a"]
        assert page["next_cursor"]
        one = client.get(url(world, f"/{first['id']}"), headers=world.company.headers)
        assert one.json()["title"] == "a"
        assert client.get(url(world, "/999"), headers=world.company.headers).status_code == 404


class TestWaiveAndState:
    def test_waiver_needs_a_reason_and_is_final(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        oid = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        blank = client.post(url(world, f"/{oid}/waive"), headers=world.prosecutor.headers,
                            json={"reason": "   "})
        assert blank.status_code == 422
        r = client.post(url(world, f"/{oid}/waive"), headers=world.prosecutor.headers,
                        json={"reason": "公司已注销，改由清算组履行"})
        assert r.status_code == 200
        assert r.json()["state"] == "waived"
        assert r.json()["waiver_reason"] == "公司已注销，改由清算组履行"
        again = client.post(url(world, f"/{oid}/waive"), headers=world.prosecutor.headers,
                            json={"reason": "x"})
        assert again.status_code == 409
        with env.db.read() as session:
            logged = session.execute(
                select(Event.body).where(Event.type == "obligation").order_by(Event.id)
            ).scalars().all()
        assert [b["action"] for b in logged] == ["set", "waived"]
        assert logged[1]["reason"] == "公司已注销，改由清算组履行"

    def test_ongoing_state_changes(self, client: TestClient, world: World) -> None:
        oid = set_obligation(client, world, kind="deidentify", title="名单去标识化",
                             details={"dataset": "公示名单", "rules": ["mask-name"]})["id"]
        r = client.post(url(world, f"/{oid}/state"), headers=world.prosecutor.headers,
                        json={"state": "breached", "reason": "公示页仍显示完整身份证号"})
        assert r.json()["state"] == "breached"
        r = client.post(url(world, f"/{oid}/state"), headers=world.prosecutor.headers,
                        json={"state": "accepted", "reason": "x"})
        assert r.status_code == 422

    def test_document_state_is_not_set_by_hand(self, client: TestClient, world: World) -> None:
        oid = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        r = client.post(url(world, f"/{oid}/state"), headers=world.prosecutor.headers,
                        json={"state": "discharged", "reason": "x"})
        assert r.status_code == 409
        assert "documents" in r.json()["message"]


class TestDocuments:
    def test_submit_reject_resubmit_accept(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        oid = set_obligation(client, world, kind="document", title="承诺书", deadline=REPLY)["id"]
        first = submit(client, world, oid)
        assert first.status_code == 201, first.text
        assert first.json()["digest"] == hashlib.sha256(LETTER).hexdigest()
        assert first.json()["size"] == len(LETTER)
        pending = submit(client, world, oid, b"another")
        assert pending.status_code == 409
        did = first.json()["id"]
        no_reason = client.post(url(world, f"/{oid}/documents/{did}/reject"),
                                headers=world.prosecutor.headers, json={})
        assert no_reason.status_code == 422
        rejected = client.post(url(world, f"/{oid}/documents/{did}/reject"),
                               headers=world.prosecutor.headers, json={"reason": "未盖章"})
        assert rejected.json()["state"] == "rejected"
        assert client.get(url(world, f"/{oid}"),
                          headers=world.company.headers).json()["state"] == "rejected"
        second = submit(client, world, oid, LETTER + b" stamped")
        assert second.status_code == 201
        did2 = second.json()["id"]
        accepted = client.post(url(world, f"/{oid}/documents/{did2}/accept"),
                               headers=world.prosecutor.headers, json={})
        assert accepted.json()["state"] == "accepted"
        assert client.get(url(world, f"/{oid}"),
                          headers=world.company.headers).json()["state"] == "accepted"
        assert submit(client, world, oid).status_code == 409
        with env.db.read() as session:
            acceptances = session.execute(
                select(Event.body).where(Event.type == "acceptance").order_by(Event.id)
            ).scalars().all()
        assert [a["action"] for a in acceptances] == ["rejected", "accepted"]

    def test_content_round_trips_and_is_stored_once(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        a = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        b = set_obligation(client, world, kind="document", title="b", deadline=REPLY)["id"]
        did = submit(client, world, a).json()["id"]
        submit(client, world, b)
        r = client.get(url(world, f"/{a}/documents/{did}/content"),
                       headers=world.prosecutor.headers)
        assert r.content == LETTER
        assert r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"
        with env.db.read() as session:
            assert len(session.execute(select(DocumentContent)).scalars().all()) == 1
        listed = client.get(url(world, f"/{a}/documents"), headers=world.company.headers)
        assert [d["id"] for d in listed.json()["items"]] == [did]

    def test_empty_file_and_wrong_kind(self, client: TestClient, world: World) -> None:
        doc = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        assert submit(client, world, doc, b"").status_code == 422
        ret = set_obligation(client, world, kind="retention", title="r",
                             details={"max_age_hours": 1})["id"]
        r = submit(client, world, ret)
        assert r.status_code == 409
        assert "not a document" in r.json()["message"]

    def test_missing_file_field_is_422(self, client: TestClient, world: World) -> None:
        doc = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        r = client.post(url(world, f"/{doc}/documents"), headers=world.company.headers)
        assert r.status_code == 422

    def test_unknown_document_is_404(self, client: TestClient, world: World) -> None:
        doc = set_obligation(client, world, kind="document", title="a", deadline=REPLY)["id"]
        r = client.post(url(world, f"/{doc}/documents/77/accept"),
                        headers=world.prosecutor.headers, json={})
        assert r.status_code == 404
