"""Message texts, Chinese first with English after: the people told are Chinese
prosecutors and company officers; the English is for vendors and auditors abroad."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True)
class Template:
    subject_zh: str
    subject_en: str
    body_zh: str
    body_en: str


TEMPLATES: dict[str, Template] = {
    "late": Template(
        subject_zh="【迟报】案件 {case_number}：代理程序 {agent} 已停止心跳",
        subject_en="Late agent in case {case_number}: {agent} stopped reporting",
        body_zh="案件 {case_number}（{case_title}）的代理程序 {agent} 自 {since} 起未发送心跳，"
                "已超过 3 个心跳周期（每周期 {interval} 秒）。"
                "静默本身即为可疑情况，请核实该主机。\n"
                "判定时间：{judged_at}（服务签名声明 {statement_id}）。",
        body_en="The agent {agent} of case {case_number} ({case_title}) has sent no heartbeat "
                "since {since}: more than 3 heartbeat intervals of {interval} s. Silence is "
                "suspicious, not neutral: please check the host.\n"
                "Judged at {judged_at} (service-signed statement {statement_id}).",
    ),
    "dark": Template(
        subject_zh="【失联】案件 {case_number}：代理程序 {agent} 已失联",
        subject_en="Dark agent in case {case_number}: {agent} has gone silent",
        body_zh="案件 {case_number}（{case_title}）的代理程序 {agent} 自 {since} 起未发送心跳，"
                "已超过 5 个心跳周期（每周期 {interval} 秒），判定为失联。\n"
                "判定时间：{judged_at}（服务签名声明 {statement_id}）。",
        body_en="The agent {agent} of case {case_number} ({case_title}) has sent no heartbeat "
                "since {since}: more than 5 heartbeat intervals of {interval} s. It is "
                "judged dark.\nJudged at {judged_at} (service-signed statement {statement_id}).",
    ),
    "overdue": Template(
        subject_zh="【逾期】案件 {case_number}：义务「{obligation}」已逾期",
        subject_en="Overdue in case {case_number}: {obligation}",
        body_zh="案件 {case_number}（{case_title}）的义务「{obligation}」期限已于 {since} 届满，"
                "至今尚未履行，结论为「未能证实删除」。\n"
                "判定时间：{judged_at}（服务签名声明 {statement_id}）。",
        body_en="The obligation \"{obligation}\" of case {case_number} ({case_title}) fell due "
                "at {since} and is not fulfilled: the verdict is not_verified.\n"
                "Judged at {judged_at} (service-signed statement {statement_id}).",
    ),
    "breached": Template(
        subject_zh="【违反义务】案件 {case_number}：义务「{obligation}」被违反",
        subject_en="Obligation breached in case {case_number}: {obligation}",
        body_zh="案件 {case_number}（{case_title}）的义务「{obligation}」自 {since} 起被判定违反"
                "（{detail}），结论为「未能证实删除」。\n"
                "判定时间：{judged_at}（服务签名声明 {statement_id}）。",
        body_en="The obligation \"{obligation}\" of case {case_number} ({case_title}) is "
                "breached since {since} ({detail}): the verdict is not_verified.\n"
                "Judged at {judged_at} (service-signed statement {statement_id}).",
    ),
    "review-opened": Template(
        subject_zh="【回头看】案件 {case_number}：第 {review_id} 次{kind_zh}回头看已开始",
        subject_en="Follow-up review {review_id} ({kind}) opened in case {case_number}",
        body_zh="案件 {case_number}（{case_title}）的第 {review_id} 次回头看已开始，"
                "已向 {challenges} 个代理程序发出新的挑战，请于 {closes_at} 前完成扫描。",
        body_en="The follow-up review {review_id} of case {case_number} ({case_title}) has "
                "opened: {challenges} fresh challenges were issued; the scans are due by "
                "{closes_at}.",
    ),
    "review-closed": Template(
        subject_zh="【回头看】案件 {case_number}：第 {review_id} 次回头看结束：{outcome_zh}",
        subject_en="Follow-up review {review_id} closed in case {case_number}: {outcome}",
        body_zh="案件 {case_number}（{case_title}）的第 {review_id} 次回头看已结束，"
                "结果：{outcome_zh}（服务签名声明 {statement_id}）。",
        body_en="The follow-up review {review_id} of case {case_number} ({case_title}) has "
                "closed: {outcome} (service-signed statement {statement_id}).",
    ),
}

ESCALATION_ZH = "【第 {step} 级提醒】"
ESCALATION_EN = "[escalation step {step}] "


def beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M 北京时间")


def render(finding: str, context: Mapping[str, object], *, step: int) -> tuple[str, str]:
    """The subject and body of a finding's message: Chinese, then English."""
    template = TEMPLATES[finding]
    subject = (f"{template.subject_zh.format_map(context)} / "
               f"{template.subject_en.format_map(context)}")
    if step:
        subject = ESCALATION_ZH.format(step=step) + ESCALATION_EN.format(step=step) + subject
    # One line whatever a case title holds: a line break would end the e-mail header.
    subject = " ".join(subject.split())
    body = (f"{template.body_zh.format_map(context)}\n\n——\n\n"
            f"{template.body_en.format_map(context)}\n")
    return subject, body
