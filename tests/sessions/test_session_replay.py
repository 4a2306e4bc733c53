"""Sessions in the verdict replay: a scope graded ``witnessed`` is re-derived from the
logged session events, and a co-signature that does not verify stops the replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deletion_audit.verdicts.replay import ReplayError
from tests.support.sessions import OnSite
from tests.verdicts.conftest import Case
from tests.verdicts.test_replay import Logged


def _witnessed(case: Case) -> None:
    onsite = OnSite.start(case)
    sid = onsite.open()
    agent = onsite.enroll_examiner_agent(sid)
    onsite.challenge(sid)
    onsite.scan(case.agent)
    onsite.scan(agent)
    onsite.record(sid)
    for name in ("prosecutor", "witness", "regulator"):
        onsite.sign(sid, name)


class TestSessionReplay:
    def test_the_witnessed_grade_replays(self, case: Case, tmp_path: Path) -> None:
        _witnessed(case)
        logged = Logged(case, tmp_path)
        replayed = logged.replay()
        assert replayed.predicate == logged.signed
        [scope] = replayed.report.scopes
        assert scope.grade == "witnessed"

    def test_a_forged_co_signature_stops_the_replay(self, case: Case, tmp_path: Path) -> None:
        _witnessed(case)
        logged = Logged(case, tmp_path)
        [first] = [i for i, ev in enumerate(logged.events)
                   if ev.type == "session" and ev.body["action"] == "signed"][:1]
        ev = logged.events[first]
        forged = dict(ev.body)
        forged["sig"] = "A" * 86 + "=="
        events = [*logged.events]
        events[first] = replace(ev, body=forged)
        with pytest.raises(ReplayError, match="does not verify over session"):
            logged.replay(events)

    def test_a_closure_without_the_rules_signatures_stops_the_replay(
        self, case: Case, tmp_path: Path
    ) -> None:
        _witnessed(case)
        logged = Logged(case, tmp_path)
        last_signed = max(i for i, ev in enumerate(logged.events)
                          if ev.type == "session" and ev.body["action"] == "signed")
        events = [ev for i, ev in enumerate(logged.events) if i != last_signed]
        with pytest.raises(ReplayError, match="do not meet its sign-off rule"):
            logged.replay(events)
