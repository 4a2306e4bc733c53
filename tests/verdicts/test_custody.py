"""``custody-until`` at expiry: the custodian's ``destroyed`` statement is due by the
obligation's derived instant; ``tick(now)`` flags the case with a signed judgment if it is
missing, and not if it came — the domain clock moved by passing ``now``."""

from __future__ import annotations

from datetime import datetime, timedelta

from deletion_audit.clock import FixedClock
from deletion_audit.models import Obligation
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.scheduling.test_tick import judgments, run, verified_predicate
from tests.support.statements import Signer, custody_obligation
from tests.verdicts.conftest import Case


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

    def test_a_destruction_statement_before_expiry_discharges_it(self, case: Case) -> None:
        _clean(case)
        oid = custody_obligation(case.client, case.world)
        due = _expiry(case, oid)
        custodian = Signer.register(case.client, case.world["custodian-officer"])
        r = custodian.submit(custodian.sign(custodian.custody(
            case.world, obligation_id=oid, occurred_at=case.env.clock.now())))
        assert r.status_code == 201, r.text
        assert _at(case, due + timedelta(minutes=5)) == []
        with case.env.db.read() as session:
            assert session.get_one(Obligation, oid).state == "discharged"
