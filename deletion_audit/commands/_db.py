"""The ``--data-dir`` / ``--db`` options every database command takes, and what they build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from deletion_audit.commands._common import CliError
from deletion_audit.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def db_options(func: F) -> F:
    func = click.option(
        "--db", "db_url", metavar="URL", default=None,
        help="Database URL (postgresql://... or sqlite:///...); env DELETION_AUDIT_DB_URL.",
    )(func)
    func = click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Data directory: embedded database, keys, last checkpoint; "
        "env DELETION_AUDIT_DATA_DIR (default ./data).",
    )(func)
    return func


def load_settings(data_dir: Path | None, db_url: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if db_url is not None:
        overrides["db_url"] = db_url
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"configuration: {first['msg']}", exit_code=2) from None
