"""The ``deletion-audit`` command line: a thin shell over the domain and the core."""

from __future__ import annotations

import click

from deletion_audit import __version__
from deletion_audit.commands.envelope import envelope
from deletion_audit.commands.keys import keygen
from deletion_audit.commands.log import log_group
from deletion_audit.commands.server import db_group, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deletion-audit")
def main() -> None:
    """deletion-audit: verifiable deletion of illegally collected personal data."""


main.add_command(keygen)
main.add_command(envelope)
main.add_command(serve)
main.add_command(db_group)
main.add_command(log_group)
