"""The month after (回头看): the +30-day follow-up review of case 1, told on the server's
domain clock moved ahead.

The server is stopped and started again with ``DELETION_AUDIT_DOMAIN_CLOCK_OFFSET`` (a
development setting): its domain clock — deadlines, liveness, reviews — runs a month
ahead, while request signatures stay on real time, so the agents' signed requests still
hold. The scheduler's ``tick(now)`` then finds the review the case's first ``verified``
verdict scheduled and opens it: a fresh challenge per bound scope, a 72-hour window.
Meanwhile an old backup restored onto the company's backup server brought copies back;
the agents answer, the verdict falls to ``not_verified``, the company deletes again, and
once the window has passed (a second, larger jump) the review closes ``clean`` and the
verdict is ``verified`` again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from deletion_audit.demo import company
from deletion_audit.demo.processes import DemoError, Process, start_scheduler, wait_for

if TYPE_CHECKING:
    from deletion_audit.demo.story import Story

FIRST_JUMP_DAYS = 31
FIRST_JUMP = f"P{FIRST_JUMP_DAYS}D"
SECOND_JUMP_DAYS = 35
"""The review opens at about +31 days with a 72-hour window: +35 days is past its end."""
SECOND_JUMP = f"P{SECOND_JUMP_DAYS}D"
REVIEW_DAYS = 30
REVIEW_SECONDS = 60.0
"""How long to wait for ``tick(now)`` to open or close the review (it runs every second)."""
REVIEW_OUTCOME_ZH = {"clean": "未发现问题", "findings": "发现问题", "no_response": "未在期限内响应"}


class MonthAfter:
    def __init__(self, story: Story) -> None:
        self.story = story
        self.say = story.say
        self.scheduler: Process | None = None

    def run(self) -> None:
        self.jump()
        self.restore()
        review = self.review_opens()
        self.story.answer(int(review["challenges"]))
        self.findings_verdict()
        self.delete_again()
        closed = self.window_ends(review["id"])
        self.final_verdict(closed)

    def _beijing(self, value: str) -> str:
        from deletion_audit.demo.story import BEIJING

        return f"{datetime.fromisoformat(value).astimezone(BEIJING):%Y-%m-%d %H:%M}"

    def _review(self, review_id: int | None = None, *, state: str) -> dict[str, Any] | None:
        """The case's announced review (or ``review_id``) once it is in ``state``."""
        page = self.story.api.call(self.story.people["prosecutor"], "GET",
                                   self.story._case("/reviews"))
        for review in page["items"]:
            if review_id is None and review["kind"] != "announced":
                continue
            if review_id is not None and review["id"] != review_id:
                continue
            if review["state"] == state:
                return dict(review)
            if review_id is None and review["state"] == "planned":
                return None  # the earliest announced review is not open yet
        return None

    def _anchored_plan(self) -> dict[str, Any] | None:
        """The case's review plan once tick(now) anchored it at the first verified verdict
        (within a second of it)."""
        plan: dict[str, Any] = self.story.api.call(self.story.people["prosecutor"], "GET",
                                                   self.story._case("/reviews/plan"))
        return plan if plan.get("anchored_at") else None

    def _restart(self, offset: str, name: str) -> str:
        """Stop the server (and the scheduler) and start them again with the domain clock
        ``offset`` ahead: the server first without its jobs, so the agents heartbeat — as
        their daemons would have all along — before the scheduler's first tick, and nobody
        is judged silent for time that did not pass."""
        story = self.story
        if self.scheduler is not None:
            self.scheduler.proc.terminate()  # stops beside the server; waited for below
        story.stop_server()
        if self.scheduler is not None:
            self.scheduler.stop()
        base = story.start_server(f"server-{name}.log", clock_offset=offset, jobs=False)
        events = [e.get("event") for e in story.run_agents()]
        if events.count("heartbeat") != len(story.agents):
            raise DemoError(f"the agents did not both heartbeat: {events}")
        self.scheduler = start_scheduler(story.layout.data,
                                         log=story.layout.logs / f"scheduler-{name}.log",
                                         env=story.server_env)
        story.stack.callback(self.scheduler.stop)
        return base

    def jump(self) -> None:
        self.say.step(f"一个月后：服务以领域时钟 +{FIRST_JUMP_DAYS} 天重新启动",
                      f"The month after: the server restarts with its domain clock "
                      f"{FIRST_JUMP_DAYS} days ahead")
        plan: dict[str, Any] = wait_for(self._anchored_plan, timeout=REVIEW_SECONDS,
                                        what="the review plan to be anchored")
        days = [str(d) for d in plan["offsets_days"]]
        self.say.detail(f"回头看计划：首次“已证实删除”裁决（北京时间 "
                        f"{self._beijing(plan['anchored_at'])}）后第 {'、'.join(days)} 天预告"
                        f"复查，每次响应期 {plan['response_hours']} 小时",
                        f"review plan: announced reviews {', '.join(days)} days after the first "
                        f"verified verdict, {plan['response_hours']} hours to respond")
        base = self._restart(FIRST_JUMP, "month-after")
        self.say.detail(f"{base} 停止后以 DELETION_AUDIT_DOMAIN_CLOCK_OFFSET={FIRST_JUMP} "
                        "重新启动（仅限开发环境）：期限、活跃度和回头看按领域时钟计算，"
                        "请求签名仍用真实时间",
                        "stopped and started again with the development-only domain clock "
                        "offset: deadlines, liveness and reviews run on it; request "
                        "signatures stay on real time")
        self.say.detail("调度器启动前，两个代理程序先发送心跳（它们的守护进程本会一直如此）："
                        "不会有人因并未流逝的时间被判定失联",
                        "both agents heartbeat before the scheduler starts, as their daemons "
                        "would have all month: nobody is judged silent for time that did not "
                        "pass")

    def restore(self) -> None:
        self.say.step("与此同时，公司把一份旧备份恢复到了备份服务器上",
                      "Meanwhile the company restored an old backup onto its backup server")
        items = company.restored_items(self.story.leftovers)
        n = company.restore_backup(self.story.evidence, items, self.story.backup_server)
        self.story.result.restored = n
        self.say.detail(f"{n} 份早已删除的清单项目副本又出现在备份服务器上",
                        f"{n} copies of deleted manifest items are back on the backup server")

    def review_opens(self) -> dict[str, Any]:
        self.say.step(f"第 {REVIEW_DAYS} 天的回头看到期，服务自动开启复查",
                      f"The +{REVIEW_DAYS}-day follow-up review falls due; the server's "
                      "scheduler opens it")
        review: dict[str, Any] = wait_for(lambda: self._review(state="open"),
                                          timeout=REVIEW_SECONDS,
                                          what=f"the +{REVIEW_DAYS}-day review to open")
        self.say.detail(f"回头看 {review['id']}（预告，北京时间 {self._beijing(review['due_at'])}"
                        f" 到期）：向 {review['challenges']} 个范围发出新的挑战，响应期至北京时间 "
                        f"{self._beijing(review['closes_at'])}",
                        f"review {review['id']} opened: {review['challenges']} fresh "
                        f"challenges, one per bound scope; {review['response_hours']} hours "
                        "to answer")
        self.say.step("两台主机的代理程序回应回头看的挑战",
                      "Both hosts' agents answer the review's challenges")
        return review

    def findings_verdict(self) -> None:
        verdict = self.story.verdict("回头看中", "during the follow-up review")
        if verdict["outcome"] != "not_verified":
            raise DemoError(f"the verdict is {verdict['outcome']} although copies came back "
                            "on the backup server; expected not_verified")

    def delete_again(self) -> None:
        story = self.story
        self.say.step("公司再次删除备份服务器上的副本，代理程序签署删除声明并重新扫描",
                      "The company deletes the copies on the backup server again; its agent "
                      "attests the deletion and re-scans")
        scope = next(s for s in story.scopes if s.agent == story.layout.second_agent_config)
        done = story.commands.agent_json(scope.agent, "delete", "--scope", str(scope.id),
                                         "--yes")
        self.say.detail(f"{scope.label}：删除 {done['deleted']:,} 份，签署 "
                        f"{done['deletion_statements']} 份删除声明；重新扫描（回应新的挑战）"
                        f"仍存在 {done['rescan']['present']}",
                        f"deleted {done['deleted']:,}, "
                        f"{done['deletion_statements']} deletion statement(s); "
                        f"{done['rescan']['present']} left on the challenged re-scan")

    def window_ends(self, review_id: int) -> dict[str, Any]:
        self.say.step(f"72 小时响应期结束：服务以领域时钟 +{SECOND_JUMP_DAYS} 天再次启动",
                      f"The 72-hour window ends: the server restarts with its domain clock "
                      f"{SECOND_JUMP_DAYS} days ahead")
        self._restart(SECOND_JUMP, "window-end")
        review: dict[str, Any] = wait_for(lambda: self._review(review_id, state="closed"),
                                          timeout=REVIEW_SECONDS,
                                          what=f"review {review_id} to close")
        outcome = review["outcome"]
        self.say.detail(f"回头看 {review_id} 结论：{REVIEW_OUTCOME_ZH.get(outcome, outcome)}"
                        f"（判定声明 {review['statement_id'][:16]}…，服务密钥签名，已记入日志）",
                        f"review {review_id} closed {outcome}, signed by the service "
                        "and logged")
        self.story.result.review = review
        if outcome != "clean":
            raise DemoError(f"review {review_id} closed {outcome}, not clean: "
                            f"{review.get('findings')}")
        self.say.detail("每个被挑战的范围在响应期内的最新扫描都干净、完整：找回的副本已删除并经复查",
                        "the latest scan of every challenged scope within the window is "
                        "clean and complete: the copies that came back were deleted and "
                        "re-checked")
        return review

    def final_verdict(self, review: dict[str, Any]) -> None:
        verdict = self.story.verdict("回头看结束后", "after the follow-up review closed", [
            {"leaf_hash": review["leaf_hash"], "received_at": review["closed_at"]}])
        if verdict["outcome"] != "verified":
            codes = ", ".join(r["code"] for r in verdict["report"]["reasons"])
            raise DemoError(f"the verdict is {verdict['outcome']}, not verified: {codes}")
