"""Sign-off rules: parsed strictly, met exactly when enough participants of each role
signed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.models import CaseRole
from deletion_audit.sessions.rules import RuleError, parse_rule

P, E, C, W = (CaseRole.PROSECUTOR, CaseRole.EXAMINER, CaseRole.COMPANY_OFFICER,
              CaseRole.WITNESS)
WORDS = {P: "prosecutor", E: "examiner", C: "company-officer", W: "witness"}


class TestParse:
    def test_the_hearings_rule(self) -> None:
        rule = parse_rule("prosecutor+2-witnesses")
        assert (rule.every_participant, dict(rule.minimum)) == (False, {P: 1, W: 2})
        assert rule.describe_en() == "1 prosecutor, 2 witnesses sign"
        assert rule.describe_zh() == "检察官1名、见证人2名签署"

    def test_all(self) -> None:
        assert parse_rule("all").every_participant

    @pytest.mark.parametrize("text", ["", "boss", "prosecutor+", "0-witnesses",
                                      "prosecutor+prosecutor", "2 witnesses", "all+witness"])
    def test_refused(self, text: str) -> None:
        with pytest.raises(RuleError):
            parse_rule(text)

    @given(st.dictionaries(st.sampled_from([P, E, C, W]), st.integers(1, 99), min_size=1))
    def test_round_trip(self, minimum: dict[CaseRole, int]) -> None:
        text = "+".join(f"{n}-{WORDS[r]}s" if n > 1 else WORDS[r] for r, n in minimum.items())
        assert dict(parse_rule(text).minimum) == minimum

    @given(st.text(max_size=40))
    def test_any_text_parses_or_is_refused_cleanly(self, text: str) -> None:
        try:
            rule = parse_rule(text)
        except RuleError:
            return
        assert rule.every_participant or rule.minimum


class TestMet:
    def test_prosecutor_and_two_witnesses(self) -> None:
        rule = parse_rule("prosecutor+2-witnesses")
        listed = [P, E, C, W, W]
        assert not rule.met(participants=listed, signed=[P, W])
        assert not rule.met(participants=listed, signed=[W, W, E])
        assert rule.met(participants=listed, signed=[P, W, W])

    def test_all_needs_every_participant(self) -> None:
        rule = parse_rule("all")
        assert not rule.met(participants=[P, W], signed=[P])
        assert rule.met(participants=[P, W], signed=[W, P])

    def test_an_impossible_rule_is_refused_when_opening(self) -> None:
        with pytest.raises(RuleError, match="needs 2 witness"):
            parse_rule("prosecutor+2-witnesses").check_possible([P, W])
