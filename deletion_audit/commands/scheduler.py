"""``deletion-audit scheduler``: the jobs alone, without the API — on another host than the
API instances, or as the standby of the one that leads."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings
from deletion_audit.db import Database
from deletion_audit.errors import StartupRefused


@click.command("scheduler")
@db_options
def scheduler(data_dir: Path | None, db_url: str | None) -> None:
    """Run the scheduled jobs (tick, log integrator, verdicts, notification sender) while
    this instance holds the scheduler's lease; stand by while another does. Stops on
    SIGINT or SIGTERM, letting a standby take over at once."""
    from deletion_audit import migrations
    from deletion_audit.app import build_context
    from deletion_audit.logs import configure_logging
    from deletion_audit.scheduling.runner import JobRunner

    settings = load_settings(data_dir, db_url)
    db = Database(settings.database_url)
    if migrations.current_revision(db.engine) != migrations.head_revision(db.engine):
        raise CliError(f"the database at {settings.database_url} is not at the current "
                       f"schema: run `deletion-audit db upgrade` first")
    configure_logging()
    try:
        ctx = build_context(settings, db=db)
    except StartupRefused as exc:
        raise CliError(f"refusing to start: {exc}", exit_code=1) from None
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    runner = JobRunner(ctx)
    runner.start()
    click.echo(f"deletion-audit scheduler {runner.holder} "
               f"{'leading' if runner.is_leader else 'standing by'}")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runner.shutdown()
        db.dispose()
