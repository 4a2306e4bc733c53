"""Message texts: Chinese first, English after, one-line subjects."""

from __future__ import annotations

from datetime import UTC, datetime

from deletion_audit.notifications.templates import TEMPLATES, beijing, render

CONTEXT = {"case_number": "(2024)沪03民特25号", "case_title": "某公司人脸数据\n删除", "agent":
           "agt_1（nvr-01）", "interval": 300, "since": "2026-03-02 09:30 北京时间",
           "judged_at": "2026-03-02 09:45 北京时间", "statement_id": "ab" * 32,
           "obligation": "整改回复", "review_id": 3, "kind": "unannounced",
           "kind_zh": "不预告", "challenges": 2, "closes_at": "2026-04-02 09:30 北京时间",
           "outcome": "findings", "outcome_zh": "发现问题",
           "detail": "retention: image older than 24 h in scope 2"}


class TestTemplates:
    def test_every_finding_renders_chinese_then_english(self) -> None:
        for finding in TEMPLATES:
            subject, body = render(finding, CONTEXT, step=0)
            zh, en = body.split("\n\n——\n\n")
            assert zh.startswith("案件")
            assert en.startswith("The ")
            zh_subject, en_subject = subject.split(" / ")
            assert zh_subject.startswith("【")
            assert en_subject[0].isascii()
            assert "\n" not in subject

    def test_an_escalation_says_its_step(self) -> None:
        subject, _ = render("overdue", CONTEXT, step=2)
        assert subject.startswith("【第 2 级提醒】[escalation step 2] 【逾期】")

    def test_beijing_time(self) -> None:
        assert beijing(datetime(2026, 4, 20, 16, 0, tzinfo=UTC)) == "2026-04-21 00:00 北京时间"
