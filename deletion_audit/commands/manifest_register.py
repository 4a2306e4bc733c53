"""``manifest register``: the server's import, straight into the database (26 M entries)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings


@click.command("register")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--case", "case_id", type=int, required=True, help="The case's id.")
@click.option("--supersede-reason", default=None,
              help="Why this manifest replaces the case's active one (required then).")
@db_options
def register(
    manifest: Path, envelope: Path, case_id: int, supersede_reason: str | None,
    data_dir: Path | None, db_url: str | None,
) -> None:
    """Register a signed manifest in a case: the same checks as the API, written through
    --db/--data-dir. Nothing becomes visible unless the whole file is valid."""
    from deletion_audit.clock import SystemClock
    from deletion_audit.db import Database
    from deletion_audit.errors import AuditError
    from deletion_audit.evidence.manifests import examiner_keys, register_manifest
    from deletion_audit.models.cases import Case

    settings = load_settings(data_dir, db_url)
    try:
        envelope_json = json.loads(envelope.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{envelope}: not a JSON envelope: {exc}") from None
    if not isinstance(envelope_json, dict):
        raise CliError(f"{envelope}: not a JSON object")
    db = Database(settings.database_url)
    try:
        with db.read() as session:
            case = session.get(Case, case_id)
            if case is None:
                raise CliError(f"no case with id {case_id}")
            keys = examiner_keys(session, case_id)
            case_number = case.case_number
        with manifest.open("rb") as stream:
            result = register_manifest(
                db, case_id=case_id, case_number=case_number, stream=stream,
                envelope=envelope_json, examiner_keys=keys, registered_by=None,
                now=SystemClock().now(), supersede_reason=supersede_reason,
            )
    except AuditError as exc:
        raise CliError(f"{manifest}: {exc.message}") from None
    finally:
        db.dispose()
    click.echo(f"manifest {result.manifest_id} active in case {case_id}: {result.count} items, "
               f"root {result.root.hex()}")
