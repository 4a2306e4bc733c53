"""The session record: the predicate the server builds from the session's scans, its
plain-language summary, and the salted commitment to its item lists.

The summary is part of the signed payload, so what a witness reads is what they sign. The
item lists stay out of it (the record is public): ``items_commitment`` is
``SHA-256(salt ‖ JCS(lists))``, and the court tier gets the salt and the lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.predicates import SessionPredicate, SessionScope
from deletion_audit.core.statements import Statement, Subject, statement_bytes
from deletion_audit.sessions.rules import SignOffRule


def commitment(salt: bytes, lists: Mapping[str, Any]) -> str:
    return hashlib.sha256(salt + canonical_json(dict(lists))).hexdigest()


def record_payload(predicate: SessionPredicate) -> bytes:
    """The exact DSSE payload the participants sign: an in-toto Statement whose subject is
    the session, by its item-list commitment."""
    name = f"session:{predicate.case_id}/{predicate.session_id}"
    return statement_bytes(Statement(
        subject=(Subject(name=name, digest={"sha256": predicate.items_commitment}),),
        predicate_type=SessionPredicate.PREDICATE_TYPE, predicate=predicate.to_predicate()))


@dataclass(frozen=True)
class Facts:
    """What the summaries say, in both languages alike."""

    place: str
    when: str
    roles: Sequence[str]
    scopes: Sequence[SessionScope]
    objects: int
    present: int
    host_ok: bool
    remarks: str
    rule: SignOffRule


_ROLE_ZH = {"prosecutor": "检察官", "examiner": "鉴定人员", "company_officer": "公司负责人",
            "witness": "见证人"}


def summary_zh(f: Facts) -> str:
    place, when, roles, scopes = f.place, f.when, f.roles, f.scopes
    objects, present, host_ok, remarks, rule = f.objects, f.present, f.host_ok, f.remarks, f.rule
    counted = {r: roles.count(r) for r in dict.fromkeys(roles)}
    people = "、".join(f"{_ROLE_ZH.get(r, r)}{n}名" for r, n in counted.items())
    missed = sum(s.found_by_examiner_only for s in scopes)
    examiner_scans = sum(1 for s in scopes for scan in s.scans if scan.attested_by == "examiner")
    lines = [
        f"{when}（北京时间），在{place}进行现场勘验。参加人：{people}。",
        f"鉴定人员使用自己控制的检测程序，对{len(scopes)}个申报的数据范围进行了"
        f"{examiner_scans}次检测，共检查{objects}个文件或记录。",
    ]
    if present:
        lines.append(f"结果：发现证据清单所列数据{present}项仍然存在，尚未删除。")
        if missed:
            lines.append(f"其中{missed}项是公司自己的检测程序没有报告的。")
    else:
        lines.append("结果：在这些数据范围内，没有发现证据清单所列的数据。")
    lines.append("环境核验：被检查的机器与公司申报的一致。" if host_ok
                 else "环境核验：被检查的机器与公司申报的不一致，请注意。")
    if remarks:
        lines.append(f"备注：{remarks}")
    lines.append(f"本记录只对上述数据范围有效，不代表其他地方没有这些数据。签署规则：{rule.describe_zh()}。")
    return "\n".join(lines)


def summary_en(f: Facts) -> str:
    place, when, roles, scopes = f.place, f.when, f.roles, f.scopes
    objects, present, host_ok, remarks, rule = f.objects, f.present, f.host_ok, f.remarks, f.rule
    counted = {r: roles.count(r) for r in dict.fromkeys(roles)}
    people = ", ".join(f"{n} {r.replace('_', ' ')}" + ("s" if n > 1 else "")
                       for r, n in counted.items())
    missed = sum(s.found_by_examiner_only for s in scopes)
    examiner_scans = sum(1 for s in scopes for scan in s.scans if scan.attested_by == "examiner")
    lines = [
        f"On-site verification at {place}, {when} (Beijing time). Present: {people}.",
        f"The examiner ran {examiner_scans} scan(s) with an agent the examiner controls over "
        f"{len(scopes)} declared scope(s), checking {objects} files or records.",
    ]
    if present:
        lines.append(f"Result: {present} item(s) of the evidence manifest are still present "
                     "and were not deleted.")
        if missed:
            lines.append(f"{missed} of them were not reported by the company's own agent.")
    else:
        lines.append("Result: no item of the evidence manifest was found in these scopes.")
    lines.append("Environment check: the machine inspected is the one the company declared."
                 if host_ok else "Environment check: the machine inspected does NOT match "
                 "what the company declared.")
    if remarks:
        lines.append(f"Remarks: {remarks}")
    lines.append("This record speaks for the scopes above only, not for any other place. "
                 f"Sign-off: {rule.describe_en()}.")
    return "\n".join(lines)
