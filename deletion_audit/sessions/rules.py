"""Sign-off rules: when a session's record has enough co-signatures to close it.

A rule is ``all`` (every participant), or terms joined by ``+``, each naming a case role and
how many of its participants must sign: ``prosecutor`` (one), ``examiner``,
``company-officer``, ``2-witnesses`` (``witness`` is one). ``prosecutor+2-witnesses`` is the
hearing's usual rule (CASES.md case 5).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deletion_audit.models import CaseRole

ALL = "all"
_ROLE_WORDS: Mapping[str, CaseRole] = {
    "prosecutor": CaseRole.PROSECUTOR, "examiner": CaseRole.EXAMINER,
    "company-officer": CaseRole.COMPANY_OFFICER, "witness": CaseRole.WITNESS,
}
_TERM = re.compile(r"(?:(?P<n>[1-9][0-9]?)-)?(?P<role>" + "|".join(_ROLE_WORDS)
                   + r")(?:es|s)?")


class RuleError(ValueError):
    """A sign-off rule that cannot be read, or that the participants cannot meet."""


@dataclass(frozen=True)
class SignOffRule:
    text: str
    every_participant: bool
    minimum: Mapping[CaseRole, int]

    def check_possible(self, roles: Iterable[CaseRole]) -> None:
        have = Counter(roles)
        for role, n in self.minimum.items():
            if have[role] < n:
                raise RuleError(f"sign-off rule {self.text} needs {n} {role.value}(s) among "
                                f"the participants; {have[role]} listed")

    def met(self, *, participants: Iterable[CaseRole], signed: Iterable[CaseRole]) -> bool:
        listed, done = Counter(participants), Counter(signed)
        if self.every_participant:
            return done == listed
        return all(done[role] >= n for role, n in self.minimum.items())

    def describe_zh(self) -> str:
        if self.every_participant:
            return "全体参加人签署"
        names = {CaseRole.PROSECUTOR: "检察官", CaseRole.EXAMINER: "鉴定人员",
                 CaseRole.COMPANY_OFFICER: "公司负责人", CaseRole.WITNESS: "见证人"}
        return "、".join(f"{names[r]}{n}名" for r, n in self.minimum.items()) + "签署"

    def describe_en(self) -> str:
        if self.every_participant:
            return "every participant signs"
        return ", ".join(f"{n} {_plural(r, n)}" for r, n in self.minimum.items()) + " sign"


def _plural(role: CaseRole, n: int) -> str:
    word = role.value.replace("_", " ")
    if n == 1:
        return word
    return word + ("es" if word.endswith("s") else "s")


def parse_rule(text: str) -> SignOffRule:
    text = text.strip()
    if text == ALL:
        return SignOffRule(text=text, every_participant=True, minimum={})
    minimum: dict[CaseRole, int] = {}
    for term in text.split("+"):
        match = _TERM.fullmatch(term)
        if match is None:
            raise RuleError(f"cannot read sign-off rule {text!r} at {term!r}: use 'all' or "
                            "terms like prosecutor+2-witnesses (roles: "
                            f"{', '.join(_ROLE_WORDS)})")
        role = _ROLE_WORDS[match.group("role")]
        if role in minimum:
            raise RuleError(f"sign-off rule {text!r} names {role.value} twice")
        minimum[role] = int(match.group("n") or 1)
    return SignOffRule(text=text, every_participant=False, minimum=minimum)
