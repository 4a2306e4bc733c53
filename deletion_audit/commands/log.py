"""``log init`` and ``log verify``."""

from __future__ import annotations

from pathlib import Path

import click

from deletion_audit.clock import SystemClock
from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.errors import StartupRefused
from deletion_audit.log.identity import get_identity, init_log, load_keys
from deletion_audit.log.tasks import integrate_pending
from deletion_audit.log.verify import verify_log


def _init(db: Database, settings: Settings) -> None:
    clock = SystemClock()
    try:
        with db.write() as session:
            init_log(session, settings=settings, now=clock.now())
        with db.read() as session:
            keys = load_keys(session, settings)
    except StartupRefused as exc:
        raise CliError(str(exc)) from None
    integrate_pending(db, keys=keys, settings=settings, clock=clock)


def ensure_log(db: Database, settings: Settings) -> None:
    """Initialise the log of a fresh embedded installation (``serve`` and the demo)."""
    with db.read() as session:
        exists = get_identity(session) is not None
    if not exists:
        _init(db, settings)


@click.group("log")
def log_group() -> None:
    """The transparency log."""


@log_group.command("init")
@click.option(
    "--origin", default=None, help="The log's public name (env DELETION_AUDIT_LOG_ORIGIN)."
)
@db_options
def log_init(origin: str | None, data_dir: Path | None, db_url: str | None) -> None:
    """Create the log's origin, log key and service key, once per installation."""
    settings = load_settings(data_dir, db_url)
    if origin:
        settings = settings.model_copy(update={"log_origin": origin})
    db = Database(settings.database_url)
    _init(db, settings)
    with db.read() as session:
        keys = load_keys(session, settings)
    click.echo(f"origin: {keys.origin}")
    click.echo(f"log key: {keys.verifier.vkey()}")
    click.echo(f"log key file: {settings.log_key_path}")
    click.echo(f"service key file: {settings.service_key_path}")


@log_group.command("verify")
@db_options
def log_verify(data_dir: Path | None, db_url: str | None) -> None:
    """Recompute the tree from the stored leaves and check every signed checkpoint.

    Exit 0 when intact, 3 when the log fails verification (naming the first bad index).
    """
    settings = load_settings(data_dir, db_url)
    db = Database(settings.database_url)
    try:
        with db.read() as session:
            report = verify_log(session)
    finally:
        db.dispose()
    if report.ok:
        click.echo(f"log intact: {report.size} leaves, {report.checkpoints} checkpoints verified")
        return
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    if report.first_bad_index is not None:
        click.echo(f"first bad index: {report.first_bad_index}", err=True)
    raise SystemExit(3)
