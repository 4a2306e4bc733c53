"""The one-screen summary of a verification, in Chinese or English."""

from __future__ import annotations

from typing import Literal

from deletion_audit.bundles.sessions import BundledSession
from deletion_audit.bundles.verify import Exit, Report

Lang = Literal["zh", "en"]

_RESULT: dict[Lang, dict[Exit, str]] = {
    "en": {
        Exit.VERIFIED: "VERIFIED: the evidence is intact and the verdict is `verified`.",
        Exit.NOT_VERIFIED: "INTACT, NOT VERIFIED: the evidence is intact; the verdict is "
                           "not `verified`.",
        Exit.FAILED: "FAILED: the evidence does not verify.",
        Exit.CANNOT_VERIFY: "CANNOT VERIFY: the bundle cannot be checked.",
    },
    "zh": {
        Exit.VERIFIED: "核验通过：证据完整，结论为“已核实删除”（verified）。",
        Exit.NOT_VERIFIED: "证据完整，但结论不是“已核实删除”。",
        Exit.FAILED: "核验失败：证据未通过核验。",
        Exit.CANNOT_VERIFY: "无法核验：缺少信任锚点或文件无法读取。",
    },
}

_OUTCOME: dict[Lang, dict[str, str]] = {
    "en": {"verified": "verified", "not_verified": "not verified",
           "insufficient_evidence": "insufficient evidence"},
    "zh": {"verified": "已核实删除", "not_verified": "未删除（发现残留或义务逾期）",
           "insufficient_evidence": "证据不足"},
}

_LABELS: dict[Lang, dict[str, str]] = {
    "en": {"case": "Case", "tier": "Bundle", "court": "court tier (full evidence)",
           "public": "public tier (counts only)", "log": "Log",
           "anchor": "anchored by", "log-key": "the log key you gave",
           "trusted-checkpoint": "the checkpoint you kept",
           "verdict": "Signed verdict", "items": "items: {total} total, {present} present, "
           "{deleted} deleted, {unseen} never seen", "reasons": "reasons",
           "rederived": "Re-derived from the bundle's own events: {state}",
           "same": "the same verdict", "differs": "DIFFERENT", "skipped": "not available "
           "in this installation", "counts": "Checked: {events} events, {keys} keys, "
           "{envelopes} statements, {files} files", "problems": "Problems"},
    "zh": {"case": "案号", "tier": "证据包", "court": "法庭版（完整证据）",
           "public": "公开版（仅含计数）", "log": "透明日志",
           "anchor": "信任锚点", "log-key": "您提供的日志公钥",
           "trusted-checkpoint": "您保存的检查点",
           "verdict": "签名结论", "items": "条目：共 {total} 条，残留 {present} 条，"
           "已删除 {deleted} 条，从未见到 {unseen} 条", "reasons": "原因",
           "rederived": "依据包内事件重新推导：{state}", "same": "结论一致",
           "differs": "结论不一致", "skipped": "本安装暂不支持",
           "counts": "已核验：{events} 个事件、{keys} 把密钥、{envelopes} 份声明、"
           "{files} 个文件", "problems": "问题"},
}


def render(report: Report, lang: Lang = "zh") -> str:
    t = _LABELS[lang]
    lines = [_RESULT[lang][report.exit], ""]
    if report.case_number is not None:
        lines.append(f"{t['case']}: {report.case_number} (#{report.case_id})")
    if report.tier is not None:
        lines.append(f"{t['tier']}: {t.get(report.tier, report.tier)}")
    if report.origin is not None:
        anchor = t.get(report.anchored_by or "", report.anchored_by or "")
        lines.append(f"{t['log']}: {report.origin}, {report.log_size} ({t['anchor']}: "
                     f"{anchor})")
    verdict = report.verdict
    if verdict is not None:
        outcome = str(verdict.get("outcome"))
        lines.append(f"{t['verdict']}: {_OUTCOME[lang].get(outcome, outcome)} "
                     f"(v{verdict.get('version')}, {verdict.get('asOf')})")
        items = verdict.get("items")
        if isinstance(items, dict):
            lines.append("  " + t["items"].format(**items))
        reasons = verdict.get("reasons") or []
        if reasons:
            lines.append(f"  {t['reasons']}: {', '.join(str(r) for r in reasons)}")
    if report.tier == "court":
        differs = any(p.code == "verdict_mismatch" for p in report.problems)
        state = t["skipped"] if not report.rederive_ran else (
            t["differs"] if differs else t["same"])
        lines.append(t["rederived"].format(state=state))
    if report.counts:
        counts = {k: report.counts.get(k, 0)
                  for k in ("events", "keys", "envelopes", "files")}
        lines.append(t["counts"].format(**counts))
    for onsite in report.sessions:
        lines.append(_session_line(onsite, lang))
    if report.problems:
        lines.append("")
        lines.append(f"{t['problems']} ({len(report.problems)}):")
        shown = report.problems[:10]
        lines.extend(f"  [{p.code}] {p.message}" for p in shown)
        if len(report.problems) > len(shown):
            lines.append(f"  … +{len(report.problems) - len(shown)}")
    return "\n".join(lines)


def _session_line(onsite: BundledSession, lang: Lang) -> str:
    signers = ", ".join(f"{role}#{user}" for user, role in onsite.signers)
    if lang == "zh":
        outcome = {"clean": "未发现", "findings": "有发现"}.get(onsite.outcome, onsite.outcome)
        state = "签署规则已满足" if onsite.sign_off_met else "签署规则未满足"
        return (f"现场勘验 {onsite.session_id}：{outcome}；{state}（{onsite.sign_off}）；"
                f"签署人：{signers}")
    state = "sign-off met" if onsite.sign_off_met else "sign-off NOT met"
    return (f"on-site session {onsite.session_id}: {onsite.outcome}; {state} "
            f"({onsite.sign_off}); signed by {signers}")
