"""``SUMMARY.md``: what the demo showed (the verdict, the month after and its review), what
it wrote, how long each step took, and how to check the bundles yourself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deletion_audit.demo.month_after import FIRST_JUMP_DAYS, REVIEW_DAYS, REVIEW_OUTCOME_ZH

if TYPE_CHECKING:
    from deletion_audit.demo.story import Story


def _review(story: Story) -> tuple[str, str]:
    """The month after in a paragraph (Chinese, English), and its section."""
    review, result = story.result.review, story.result
    if not review:
        return "", ""
    outcome = review["outcome"]
    trail = " → ".join(f"`{o}`" for o in result.outcomes)
    paragraph = f"""
一个月后（服务的领域时钟 +{FIRST_JUMP_DAYS} 天），第 {REVIEW_DAYS} 天的回头看由服务自动开启：\
一份旧备份恢复到备份服务器上，{result.restored} 份早已删除的副本重新出现，裁决降为“未证实删除”；\
公司再次删除并经复查，72 小时响应期结束后回头看 {review['id']} 的结论为 **{outcome}**\
（{REVIEW_OUTCOME_ZH.get(outcome, '')}），裁决恢复为“已证实删除”。

The month after (the server's domain clock {FIRST_JUMP_DAYS} days ahead), the \
+{REVIEW_DAYS}-day follow-up review opened on its own: an old backup restored onto the \
backup server brought back {result.restored} deleted copies and the verdict fell to \
`not_verified`; the company deleted them again, and when the 72-hour window ended review \
{review['id']} closed **{outcome}** and the verdict was `verified` again.
"""
    section = f"""
## The follow-up review (回头看)

| | |
|---|---|
| review | {review['id']} ({review['kind']}, +{REVIEW_DAYS} days) |
| due | {review['due_at']} |
| opened | {review['opened_at']} ({review['challenges']} challenges) |
| window closed | {review['closes_at']} |
| outcome | **{outcome}** ({REVIEW_OUTCOME_ZH.get(outcome, '')}) |
| signed outcome | statement `{review['statement_id']}`, log leaf `{review['leaf_hash']}` |
| verdicts shown | {trail} |

Times are the server's domain clock (moved ahead for the demo); the bundles carry the \
review's events: scheduled, opened, closed.
"""
    return paragraph, section


def write(story: Story) -> None:
    from deletion_audit.demo.story import CASE_NUMBER, OUTCOME_ZH

    result, layout, options = story.result, story.layout, story.options
    counts = story.evidence.counts
    written = "\n".join(f"- {name}: `{path.relative_to(layout.out)}`"
                        for name, path in result.written.items())
    notes = "\n".join(f"- {note}" for note in result.notes) or "- none"
    timings = "\n".join(f"| {step} | {seconds:.1f} |"
                        for step, seconds in story.say.durations())
    month_after, review = _review(story)
    text = f"""# deletion-audit demo — {CASE_NUMBER}

裁决 / verdict: **{result.outcome}**（{OUTCOME_ZH.get(result.outcome, '')}）

案件 {result.case_id}：{counts.images:,} 张合成人脸图片、{counts.videos:,} 个合成视频，\
{counts.people} 名合成人员（规模 {options.scale}，种子 {options.seed}），\
从不使用真实人脸。公司的代理程序找到残留、删除，并以干净的扫描回应了检察官的挑战。裁决只针对已申报的范围；\
公司自己运行的代理程序所做的扫描，是公司自己的陈述。

Case {result.case_id}: {counts.items:,} synthetic items of {counts.people} synthetic \
people (never real faces). The company's agents found the leftovers, deleted them and \
answered the prosecutor's challenges with clean scans; the verdict speaks for the declared \
scopes only, and a company-run agent's scan is the company's assertion.
{month_after}{review}
## Written here

{written}

## Notes

{notes}

## Time per step (seconds)

| step | s |
|---|---|
{timings}

## Check it yourself

```sh
deletion-audit verify bundles/case-{result.case_id}-court.zip \\
    --log-key "$(cat log-verifier-key.txt)"
deletion-audit manifest verify manifest/manifest.jsonl manifest/manifest.dsse.json \\
    --pub keys/examiner.key.pub
```
"""
    layout.summary.write_text(text, encoding="utf-8")
    result.written["summary"] = layout.summary
