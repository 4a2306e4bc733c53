"""The ``deletion-audit-agent`` command line."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import click

from deletion_audit_agent import __version__

DEFAULT_CONFIG = Path("/etc/deletion-audit/agent.toml")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deletion-audit-agent")
def main() -> None:
    """The deletion-audit agent: looks for manifest items on this host, deletes, attests."""


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=DEFAULT_CONFIG, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path, as_json: bool) -> None:
    """Show whether this host is enrolled and what the agent runs on."""
    state = {
        "version": __version__,
        "python": platform.python_version(),
        "config": str(config_path),
        "enrolled": config_path.exists(),
    }
    if as_json:
        click.echo(json.dumps(state))
    else:
        click.echo(f"deletion-audit-agent {__version__} (Python {state['python']})")
        click.echo(f"config: {config_path} ({'enrolled' if state['enrolled'] else 'not enrolled'})")
    sys.exit(0 if state["enrolled"] else 1)
