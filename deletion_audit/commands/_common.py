"""What every subcommand shares: one way to fail with one clear line."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    """An error the user can fix: printed as one line, exits with ``exit_code``.

    Exit code 2 stays click's usage error; everything else picks its own code (1 by default).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click declares exit_code on the class; each error picks its own.
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
