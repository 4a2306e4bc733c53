"""Reason codes of a verdict, each with its Chinese and English text, and the limit every
verdict states. Codes are stable (they are signed into the verdict statement); texts may
be reworded."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Outcome(StrEnum):
    VERIFIED = "verified"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    NOT_VERIFIED = "not_verified"


# code → (outcome it forces, Chinese, English)
REASONS: Mapping[str, tuple[Outcome, str, str]] = {
    "items_present": (
        Outcome.NOT_VERIFIED,
        "最近一次带挑战的扫描仍发现证据清单中的项目",
        "the latest challenged scan of a scope still finds manifest items"),
    "obligation_overdue": (
        Outcome.NOT_VERIFIED,
        "有义务已过期限仍未履行",
        "an obligation is past its due time and not fulfilled"),
    "obligation_breached": (
        Outcome.NOT_VERIFIED,
        "有义务被认定为违反",
        "an obligation was found breached"),
    # The latest closed follow-up review found a manifest item present again (its rule:
    # verdicts/engine.py ``_review_reasons``).
    "review_items_present": (
        Outcome.NOT_VERIFIED,
        "最近一次回头看发现证据清单中的项目再次出现",
        "the latest follow-up review found manifest items present again"),
    # A custody-until obligation expired in force (verdicts/custody.py): these say why.
    "custody_destruction_not_stated": (
        Outcome.NOT_VERIFIED,
        "封存备份到期，保管方尚未声明已销毁或已彻底清除",
        "custody expired and the custodian has not stated the sealed backup destroyed or "
        "sanitised"),
    "custody_absence_not_shown": (
        Outcome.NOT_VERIFIED,
        "封存备份到期，但尚未证明其项目在其他任何范围中都不存在：有范围在销毁声明之后没有"
        "未发现项目的带挑战完整扫描",
        "custody expired but its items are not shown absent everywhere: a scope lacks a clean "
        "challenged complete scan after the destruction statement"),
    "no_manifest": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "本案尚无生效的证据清单",
        "the case has no active evidence manifest"),
    "no_scope_declared": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "公司尚未申报任何数据存放范围",
        "the company has declared no scope where data may live"),
    "scope_not_bound": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "有申报的范围未绑定任何代理程序",
        "a declared scope has no agent bound to it"),
    "scope_not_scanned": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "有范围在最后一次删除之后没有带挑战的完整扫描",
        "a scope lacks a challenged complete scan after its last deletion"),
    "data_flow_not_covered": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "有申报的数据流向既无范围扫描也无供应商声明",
        "a declared data flow is covered by neither a scanned scope nor a vendor statement"),
    "source_not_covered": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "取证发现的部分项目所在位置不在任何申报范围内",
        "forensics found items in a location no declared scope covers"),
    "expected_data_never_seen": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "声明应存有数据的范围从未被扫描到任何对象",
        "a scope declared to hold data was never seen holding any object"),
    "vanished_without_deletion": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "有项目在两次扫描之间消失，但没有删除声明",
        "items vanished between scans without a deletion statement"),
    "retention_unchecked": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "有受保存期限规则约束的范围，其最近一次带挑战的扫描未报告数据年龄，无法证明规则得到遵守",
        "a scope under a retention rule: its latest challenged scan reported no ages, so the "
        "rule is not shown kept there"),
    "review_findings": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "最近一次回头看发现问题：扫描未覆盖全部范围、受保存期限规则约束的范围未报告数据年龄，"
        "或代理程序的声明被拒收",
        "the latest follow-up review had findings: a scan did not cover its whole scope or "
        "reported no ages under a retention rule, or a statement of a challenged agent was "
        "refused"),
    "review_no_response": (
        Outcome.INSUFFICIENT_EVIDENCE,
        "最近一次回头看未在期限内得到响应",
        "the latest follow-up review was not answered within its response window"),
}

LIMIT_ZH = ("删除情况仅针对已申报的范围给出；由被要求删除的公司自行运行的代理程序所做的扫描，"
            "是该公司自己的陈述。")
LIMIT_EN = ("Deletion is shown for the declared scopes only; a company-run agent's scan is "
            "the company's assertion.")


def outcome_of(codes: set[str]) -> Outcome:
    """The truth table: any not-verified reason wins, then any insufficient-evidence one."""
    forced = {REASONS[c][0] for c in codes}
    if Outcome.NOT_VERIFIED in forced:
        return Outcome.NOT_VERIFIED
    if Outcome.INSUFFICIENT_EVIDENCE in forced:
        return Outcome.INSUFFICIENT_EVIDENCE
    return Outcome.VERIFIED
