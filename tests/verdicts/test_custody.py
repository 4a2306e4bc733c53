"""``custody-until`` at expiry: the custodian's ``destroyed`` statement is due by the
obligation's derived instant; ``tick(now)`` flags the case with a signed judgment if it is
missing, and not if it came — the domain clock moved by passing ``now``."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from deletion_audit.clock import FixedClock
from deletion_audit.core.merkle import leaf_hash
from deletion_audit.core.predicates import ScanCounts
from deletion_audit.models import Event, Obligation, PartyRole
from deletion_audit.verdicts.replay import ReplayError
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.scheduling.test_tick import judgments, run, verified_predicate
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.statements import Signer, custody_obligation, obligation
from tests.verdicts.conftest import Case
from tests.verdicts.test_replay import Logged, _altered, replayed


def _expiry(case: Case, oid: int) -> datetime:
    with case.env.db.read() as session:
        due = session.get_one(Obligation, oid).due_at
    assert due is not None
    return due


def _clean(case: Case) -> None:
    case.scan(present=case.digests[:1])
    case.delete(case.digests[:1], minutes=1)
    case.scan(minutes=2)


def _at(case: Case, now: datetime) -> list[str]:
    """The verdict job and the tick, both at ``now``: the obligation judgments made (the
    agent, silent for a year, is judged too)."""
    recompute_verdicts(case.env.db, keys=case.env.ctx.keys, clock=FixedClock(now))
    return [e for e in run(case.env, now).judgments if ":obligation:" in e]


class TestCustodyAtExpiry:
    def test_no_destruction_statement_by_expiry_is_flagged(self, case: Case) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        due = _expiry(case, oid)
        assert _at(case, due - timedelta(hours=1)) == []
        (episode,) = _at(case, due + timedelta(minutes=5))
        assert episode.startswith(f"overdue:obligation:{oid}:")
        (row,) = [j for j in judgments(case.env) if j.obligation_id is not None]
        predicate = verified_predicate(case.env, row)
        assert (predicate.finding, predicate.obligation_id) == ("overdue", str(oid))
        assert "custody-until due" in predicate.detail
        assert _at(case, due + timedelta(days=1)) == []  # once

    @pytest.mark.parametrize("action", ["destroyed", "sanitised"])
    def test_a_destruction_statement_before_expiry_discharges_it(self, case: Case,
                                                                 action: str) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        due = _expiry(case, oid)
        custodian = Signer.register(case.client, case.world["custodian-officer"])
        r = custodian.submit(custodian.sign(custodian.custody(
            case.world, obligation_id=oid, occurred_at=case.env.clock.now(), action=action)))
        assert r.status_code == 201, r.text
        assert _at(case, due + timedelta(minutes=5)) == []
        with case.env.db.read() as session:
            assert session.get_one(Obligation, oid).state == "discharged"


DIGEST = hashlib.sha256(b"sealed backup tape-7").hexdigest()


def _container(case: Case) -> tuple[dict[str, Any], AgentClient, int]:
    """The custodian's sealed-container scope and agent, and a custody obligation on it
    whose sealing recorded the container's digest."""
    world = case.world
    r = case.client.post(f"{world.url}/scopes", headers=world["custodian-officer"].headers,
                         json={"name": "tape-7", "kind": "sealed_container",
                               "spec": {"path": "/vault/tape-7.tar"}})
    assert r.status_code == 201, r.text
    scope: dict[str, Any] = r.json()
    agent = enroll(case.client, world, scope_ids=[scope["id"]],
                   party_id=world.parties[PartyRole.CUSTODIAN])
    oid = obligation(case.client, world, kind="custody-until", title="备份封存，到期彻底删除",
                     details={"medium": "tape-7", "scope_id": scope["id"],
                              "custodian_party_id": world.parties[PartyRole.CUSTODIAN]},
                     deadline={"start_event": "疫苗有效期届满", "served_on": "2027-03-02",
                               "amount": 10, "unit": "days"})
    custodian = Signer.register(case.client, world["custodian-officer"])
    sealed = custodian.custody(world, obligation_id=oid, occurred_at=case.env.clock.now(),
                               action="sealed").model_copy(update={
                                   "container_digest": DIGEST, "items_root": "e" * 64})
    assert custodian.submit(custodian.sign(sealed)).status_code == 201
    return scope, agent, oid


def _rehash(case: Case, scope: dict[str, Any], agent: AgentClient, digest: str | None,
            minutes: int) -> None:
    root = leaf_hash(bytes.fromhex(digest)).hex() if digest else "0" * 64
    hashed = 1 if digest else 0
    case.scan(agent=agent, scope=scope, minutes=minutes, root=root,
              counts=ScanCounts(objects=1, hashed=hashed, hashed_bytes=hashed * 4096,
                                present=0, skipped={} if digest else {"unreadable": 1}))


class TestSealedContainerBeforeExpiry:
    def test_the_same_digest_keeps_custody_in_force(self, case: Case) -> None:
        scope, agent, oid = _container(case)
        _rehash(case, scope, agent, DIGEST, minutes=1)
        with case.env.db.read() as session:
            assert session.get_one(Obligation, oid).state == "in_force"

    def test_another_digest_breaches_it_and_the_tick_judges_it(self, case: Case) -> None:
        scope, agent, oid = _container(case)
        _rehash(case, scope, agent, DIGEST, minutes=1)
        _rehash(case, scope, agent, hashlib.sha256(b"opened").hexdigest(), minutes=2)
        with case.env.db.read() as session:
            assert session.get_one(Obligation, oid).state == "breached"
        (episode,) = _at(case, case.env.clock.now() + timedelta(minutes=5))
        assert episode.startswith(f"breached:obligation:{oid}:")
        (row,) = [j for j in judgments(case.env) if j.obligation_id == oid]
        assert verified_predicate(case.env, row).finding == "breached"

    def test_an_unreadable_container_breaches_it_too(self, case: Case) -> None:
        scope, agent, oid = _container(case)
        _rehash(case, scope, agent, None, minutes=1)
        with case.env.db.read() as session:
            assert session.get_one(Obligation, oid).state == "breached"


def test_a_container_breach_replays_from_the_log(case: Case, tmp_path: Path) -> None:
    _clean(case)
    scope, agent, _oid = _container(case)
    _rehash(case, scope, agent, hashlib.sha256(b"opened").hexdigest(), minutes=3)
    predicate = replayed(case, tmp_path)
    assert (predicate["outcome"], predicate["reasons"]) == (
        "not_verified", ["obligation_breached"])


# -- at expiry: "none of its items appear anywhere" ---------------------------------------


def _destroy(case: Case, oid: int, occurred_at: datetime, action: str = "destroyed") -> None:
    custodian = Signer.register(case.client, case.world["custodian-officer"])
    r = custodian.submit(custodian.sign(custodian.custody(
        case.world, obligation_id=oid, occurred_at=occurred_at, action=action)))
    assert r.status_code == 201, r.text


def _obligation_verdict(case: Case, oid: int) -> dict[str, Any]:
    (entry,) = [o for o in case.verdict()["report"]["obligations"] if o["id"] == oid]
    return entry


def _obligation_read(case: Case, oid: int) -> dict[str, Any]:
    r = case.client.get(f"{case.world.url}/obligations/{oid}",
                        headers=case.world.prosecutor.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _state(case: Case, oid: int) -> str:
    with case.env.db.read() as session:
        return session.get_one(Obligation, oid).state


def _events(case: Case, oid: int) -> list[dict[str, Any]]:
    with case.env.db.read() as session:
        return [e.body for e in session.execute(select(Event).where(
            Event.type == "obligation").order_by(Event.id)).scalars()
            if e.body.get("obligationId") == oid]


class TestCustodyEndsWithItemsAbsentEverywhere:
    def test_a_statement_without_a_later_clean_scan_stays_in_force_with_its_reason(
        self, case: Case
    ) -> None:
        _clean(case)  # finishes two minutes from now
        oid = custody_obligation(case.client, case.world)
        _destroy(case, oid, case.env.clock.now() + timedelta(minutes=3))
        assert _state(case, oid) == "in_force"
        pending = _obligation_verdict(case, oid)["pending"]
        assert (pending["code"], pending["scope_ids"]) == (
            "custody_absence_not_shown", [case.scope["id"]])
        assert case.verdict()["outcome"] == "verified"  # in force does not block
        shown = _obligation_read(case, oid)["pending"]
        assert (shown["code"], shown["scope_ids"], bool(shown["zh"])) == (
            "custody_absence_not_shown", [case.scope["id"]], True)
        case.scan(minutes=4)
        assert _state(case, oid) == "discharged"
        assert "pending" not in _obligation_verdict(case, oid)
        assert _obligation_read(case, oid)["pending"] is None

    @pytest.mark.parametrize("order", ["statement_first", "scans_first"])
    @pytest.mark.parametrize("action", ["destroyed", "sanitised"])
    def test_every_other_scope_scanned_clean_after_it_discharges_it_in_either_order(
        self, case: Case, order: str, action: str, tmp_path: Path
    ) -> None:
        second = declare_scope(case.client, case.world, name="门店备份")
        agent = enroll(case.client, case.world, scope_ids=[second["id"]])
        oid = custody_obligation(case.client, case.world)
        occurred = case.env.clock.now() - timedelta(hours=1)
        if order == "statement_first":
            _destroy(case, oid, occurred, action)
        case.scan(minutes=1)
        assert _state(case, oid) == "in_force"
        case.scan(agent=agent, scope=second, minutes=2)
        if order == "scans_first":
            assert _state(case, oid) == "in_force"
            _destroy(case, oid, occurred, action)
        assert _state(case, oid) == "discharged"
        predicate = replayed(case, tmp_path)
        assert predicate["outcome"] == "verified"

    def test_a_sealed_container_scope_is_not_asked_for_and_not_compared_after_it(
        self, case: Case
    ) -> None:
        scope, agent, oid = _container(case)
        _destroy(case, oid, case.env.clock.now())
        _rehash(case, scope, agent, None, minutes=1)  # the container is gone: unreadable
        assert _state(case, oid) == "in_force"
        case.scan(minutes=2)
        assert _state(case, oid) == "discharged"

    def test_expired_without_the_statement_the_verdict_names_it(self, case: Case) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        assert _obligation_read(case, oid)["pending"]["code"] == "custody_destruction_not_stated"
        (episode,) = _at(case, _expiry(case, oid) + timedelta(minutes=5))
        assert episode.startswith(f"overdue:obligation:{oid}:")
        reason = _reason(case, "custody_destruction_not_stated")
        assert (reason["obligation_ids"], reason["scope_ids"]) == ([oid], [])
        assert reason["zh"]
        assert reason["en"]

    def test_expired_with_the_statement_but_no_later_scan_is_overdue_naming_the_scope(
        self, case: Case, tmp_path: Path
    ) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        _destroy(case, oid, case.env.clock.now() + timedelta(minutes=5))
        due = _expiry(case, oid)
        assert _at(case, due - timedelta(hours=1)) == []
        (episode,) = _at(case, due + timedelta(minutes=5))
        assert episode.startswith(f"overdue:obligation:{oid}:")
        reason = _reason(case, "custody_absence_not_shown")
        assert (reason["obligation_ids"], reason["scope_ids"]) == ([oid], [case.scope["id"]])
        # The signed verdict with that reason is re-derived from the logged events.
        predicate = replayed(case, tmp_path)
        assert predicate["reasons"] == ["custody_absence_not_shown", "obligation_overdue"]

    @pytest.mark.parametrize("order", ["statement_first", "scan_first"])
    def test_items_found_after_it_breach_it_naming_the_scope_in_either_order(
        self, case: Case, order: str, tmp_path: Path
    ) -> None:
        oid = custody_obligation(case.client, case.world)
        occurred = case.env.clock.now() - timedelta(hours=1)
        if order == "statement_first":
            _destroy(case, oid, occurred)
        case.scan(present=case.digests[:2], minutes=1)
        if order == "scan_first":
            assert _state(case, oid) == "in_force"
            _destroy(case, oid, occurred)
        assert _state(case, oid) == "breached"
        breach = _events(case, oid)[-1]
        assert (breach["from"], breach["to"], breach["scopeIds"]) == (
            "in_force", "breached", [case.scope["id"]])
        assert f"of scope {case.scope['id']}: 2 items" in breach["reason"]
        predicate = replayed(case, tmp_path)
        assert predicate["reasons"] == ["items_present", "obligation_breached"]
        (episode,) = _at(case, case.env.clock.now() + timedelta(minutes=5))
        assert episode.startswith(f"breached:obligation:{oid}:")

    def test_items_found_after_a_discharge_breach_it_too(self, case: Case,
                                                         tmp_path: Path) -> None:
        oid = custody_obligation(case.client, case.world)
        _destroy(case, oid, case.env.clock.now() - timedelta(hours=1))
        case.scan(minutes=1)
        assert _state(case, oid) == "discharged"
        case.scan(present=case.digests[:1], minutes=2)
        assert _state(case, oid) == "breached"
        assert _events(case, oid)[-1]["from"] == "discharged"
        # The replay derives the discharge the breach starts from.
        assert replayed(case, tmp_path)["reasons"] == ["items_present", "obligation_breached"]

    def test_a_logged_breach_no_scan_bears_out_stops_the_replay(self, case: Case,
                                                                tmp_path: Path) -> None:
        other = declare_scope(case.client, case.world, name="门店备份")
        oid = custody_obligation(case.client, case.world)
        _destroy(case, oid, case.env.clock.now() - timedelta(hours=1))
        case.scan(present=case.digests[:1], minutes=1)
        assert _state(case, oid) == "breached"
        logged = Logged(case, tmp_path)
        events = _altered(logged.events, "obligation", scopeIds=[other["id"]])
        with pytest.raises(ReplayError, match=rf"\(obligation\): obligation {oid}'s breach "
                                              rf"names scopes \[{other['id']}\], but no counted"):
            logged.replay(events)

    def test_items_found_before_the_statement_do_not_breach_it(self, case: Case) -> None:
        oid = custody_obligation(case.client, case.world)
        case.scan(present=case.digests[:1])
        case.delete(case.digests[:1], minutes=1)
        _destroy(case, oid, case.env.clock.now() + timedelta(minutes=1))
        assert _state(case, oid) == "in_force"
        case.scan(minutes=2)
        assert _state(case, oid) == "discharged"


def _reason(case: Case, code: str) -> dict[str, Any]:
    verdict = case.verdict(recompute=False)
    assert verdict["outcome"] == "not_verified"
    (reason,) = [r for r in verdict["report"]["reasons"] if r["code"] == code]
    return reason
