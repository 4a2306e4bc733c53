"""``demo``: case 1 of CASES.md told end to end on the embedded default (SQLite, a local
server on 127.0.0.1), in plain words, Chinese first."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from deletion_audit.commands._common import CliError
from deletion_audit.demo.evidence import SCALES, EvidenceError
from deletion_audit.demo.month_after import REVIEW_DAYS, REVIEW_OUTCOME_ZH
from deletion_audit.demo.processes import DemoError
from deletion_audit.demo.say import Narrator
from deletion_audit.demo.story import OUTCOME_ZH, Options, Story

EXIT_INTERRUPTED = 130


@click.command("demo")
@click.option("--scale", type=click.Choice(SCALES), default="0.1", show_default=True,
              help="Share of case 1's 18,488 images, 7,193 videos and 505 people.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-out"), show_default=True,
              help="Where the evidence, keys, manifest, bundles and summary go.")
@click.option("--seed", type=int, default=2024, show_default=True,
              help="Seed of the synthetic evidence (same seed and scale: same files).")
@click.option("--s3/--no-s3", default=True, show_default=True,
              help="Put some leftovers in an S3 bucket (needs the `weed` binary and boto3).")
def demo(scale: str, out: Path, seed: int, s3: bool) -> None:
    """Tell case 1 end to end: evidence, manifest, case, agents, deletion, challenge,
    verdict, the month after (the +30-day follow-up review), bundles, offline
    verification. Exits non-zero with one line if a step fails."""
    narrator = Narrator()
    story = Story(Options(out=out, scale=scale, seed=seed, s3=s3), narrator)
    # SIGTERM unwinds like Ctrl-C, so the server and every child are stopped on the way out.
    previous = {sig: signal.signal(sig, narrator.interrupt)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = story.run()
        if narrator.interrupted:  # swallowed where it landed, after the last step began
            raise KeyboardInterrupt
    except (DemoError, EvidenceError) as exc:
        raise CliError(f"{narrator.current or 'demo'}: {exc}") from None
    except KeyboardInterrupt:
        click.echo("interrupted: the server and every child process were stopped", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("")
    click.echo(f"裁决 / Verdict: {result.outcome}（{OUTCOME_ZH.get(result.outcome, '')}）"
               f" — 案件 / case {result.case_id}, {narrator.elapsed():.0f} s")
    if result.review:
        outcome = result.review["outcome"]
        click.echo(f"回头看 / Follow-up review {result.review['id']} (+{REVIEW_DAYS} days): "
                   f"{outcome}"
                   f"（{REVIEW_OUTCOME_ZH.get(outcome, '')}）; verdicts "
                   f"{' → '.join(result.outcomes)}")
    for note in result.notes:
        click.echo(f"注意 / Note: {note}")
    click.echo(f"写入 / Written into {story.layout.out}:")
    for name, path in result.written.items():
        click.echo(f"  {name}: {path}")
