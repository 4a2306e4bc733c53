"""``serve`` and ``db upgrade``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings
from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.errors import StartupRefused


def _migrate(settings: Settings) -> Database:
    from deletion_audit import migrations

    db = Database(settings.database_url)
    try:
        migrations.upgrade(db.engine)
    except Exception as exc:
        raise CliError(f"cannot upgrade the database at {settings.database_url}: {exc}") from exc
    return db


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@db_options
def db_upgrade(data_dir: Path | None, db_url: str | None) -> None:
    """Apply every migration (Alembic) to the database."""
    settings = load_settings(data_dir, db_url)
    _migrate(settings).dispose()
    click.echo(f"database at head: {settings.database_url}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--jobs/--no-jobs", default=True, show_default=True,
              help="Run the scheduled jobs here too (while this instance leads); "
              "--no-jobs leaves them to `deletion-audit scheduler`.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (one per core is a good start); writers to an embedded "
              "SQLite database queue on a lock file beside it.")
@db_options
def serve(host: str, port: int, jobs: bool, workers: int, data_dir: Path | None,
          db_url: str | None) -> None:
    """Run the API server and, unless --no-jobs, the scheduled jobs (tick, log integrator,
    verdicts, notifications) while it holds the scheduler's lease. On a fresh embedded data
    directory it migrates the database and initialises the log first."""
    import uvicorn

    from deletion_audit import migrations
    from deletion_audit.app import build_context, create_app, settle_for_serving
    from deletion_audit.commands.log import ensure_log
    from deletion_audit.logs import configure_logging

    settings = load_settings(data_dir, db_url)
    configure_logging()
    if settings.is_embedded:
        db = _migrate(settings)
        ensure_log(db, settings)
    else:
        db = Database(settings.database_url)
        if migrations.current_revision(db.engine) != migrations.head_revision(db.engine):
            raise CliError("the database is not at the current schema: run `deletion-audit "
                           "db upgrade` first")
    try:
        ctx = build_context(settings, db=db)
    except StartupRefused as exc:
        raise CliError(f"refusing to start: {exc}", exit_code=1) from None
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host  # noqa: S104
    click.echo(f"deletion-audit {settings.database_url}")
    click.echo(f"OpenAPI docs: http://{shown}:{port}/docs")
    if workers == 1:
        app = create_app(ctx, run_jobs=jobs)
        settle_for_serving()
        uvicorn.run(app, host=host, port=port, log_config=None)
        return
    db.dispose()
    # Each worker builds its own app from the environment (it must not inherit engines).
    os.environ["DELETION_AUDIT_DATA_DIR"] = str(settings.data_dir)
    if db_url is not None:
        os.environ["DELETION_AUDIT_DB_URL"] = db_url
    os.environ["DELETION_AUDIT_SERVE_JOBS"] = "1" if jobs else "0"
    uvicorn.run("deletion_audit.app:app_from_environment", factory=True, workers=workers,
                host=host, port=port, log_config=None)
