"""``export`` and ``verify``: evidence bundles out of the database, and checked offline."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import click

from deletion_audit.bundles.layout import BundleIndex, Tier
from deletion_audit.bundles.service import export_bundle, prepare_export
from deletion_audit.bundles.summary import Lang, render
from deletion_audit.bundles.verify import Anchor, Exit, verify_bundle
from deletion_audit.clock import SystemClock
from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings
from deletion_audit.core.checkpoint import parse_checkpoint_text
from deletion_audit.core.errors import CoreError
from deletion_audit.db import Database
from deletion_audit.errors import AuditError, StartupRefused
from deletion_audit.log.identity import LogKeys, load_keys


@click.command("export")
@click.argument("case_id", type=int)
@click.option("--tier", type=click.Choice([t.value for t in Tier]), required=True,
              help="court: digests, pseudonyms, salts and every envelope; public: counts, "
              "public events and proofs only.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The zip to write ('-' for standard output).")
@click.option("--consistent-with", "kept", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A checkpoint the recipient kept (older than the log's latest 10,000): "
              "the bundle proves its log extends it. Repeatable.")
@db_options
def export(case_id: int, tier: str, output: Path, kept: tuple[Path, ...],
           data_dir: Path | None, db_url: str | None) -> None:
    """Export case CASE_ID as an evidence bundle anyone can verify offline."""
    sizes = tuple(_checkpoint_size(path) for path in kept)
    settings = load_settings(data_dir, db_url)
    db = Database(settings.database_url)
    clock = SystemClock()
    try:
        with db.read() as session:
            keys = load_keys(session, settings)
        prepare_export(db, keys=keys, settings=settings, clock=clock, case_id=case_id)
        if str(output) == "-":
            export_bundle(db, keys=keys, case_id=case_id, tier=Tier(tier), now=clock.now(),
                          out=sys.stdout.buffer, consistent_with=sizes)
            return
        index = _export_to_file(db, keys, case_id, Tier(tier), clock.now(), output, sizes)
    except StartupRefused as exc:
        raise CliError(str(exc)) from None
    except AuditError as exc:
        raise CliError(exc.message) from None
    finally:
        db.dispose()
    click.echo(f"{output}: {index.tier.value} bundle of case {index.case_number} "
               f"({len(index.files) + 1} files, log size {index.log_size})")


def _checkpoint_size(path: Path) -> int:
    try:
        return parse_checkpoint_text(path.read_text("utf-8")).size
    except (OSError, UnicodeDecodeError, CoreError) as exc:
        raise CliError(f"{path}: not a checkpoint: {exc}") from None


def _export_to_file(db: Database, keys: LogKeys, case_id: int, tier: Tier, now: datetime,
                    output: Path, sizes: tuple[int, ...]) -> BundleIndex:
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a failed export leaves nothing half-done.
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            index = export_bundle(db, keys=keys, case_id=case_id, tier=tier, now=now, out=fh,
                                  consistent_with=sizes)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index


@click.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log-key", metavar="KEYSTRING", default=None,
              help="The log's verifier key (name+id+key), as published by the log.")
@click.option("--trusted-checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="A checkpoint of the log you kept earlier.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, bundle: Path, log_key: str | None,
           trusted_checkpoint: Path | None, lang: Lang, as_json: bool) -> None:
    """Verify an evidence bundle offline.

    Exit 0 verified, 1 intact but not verified, 3 the evidence fails verification,
    4 cannot verify (no anchor, unreadable).
    """
    if log_key is not None and trusted_checkpoint is not None:
        raise click.UsageError("give --log-key or --trusted-checkpoint, not both")
    note = None
    if trusted_checkpoint is not None:
        try:
            note = trusted_checkpoint.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"error: cannot read the kept checkpoint {trusted_checkpoint}: {exc}",
                       err=True)
            ctx.exit(int(Exit.CANNOT_VERIFY))
    report = verify_bundle(bundle, Anchor(log_key=log_key, trusted_checkpoint=note))
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(render(report, lang))
    ctx.exit(int(report.exit))
