"""The ``deletion-audit`` command line: a thin shell over the domain and the core.

Subcommands are imported when used, so the key and envelope tools work from a plain
install (no server extra) and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

from deletion_audit import __version__

COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("deletion_audit.commands.server", "serve", "Run the API server."),
    "db": ("deletion_audit.commands.server", "db_group", "Database schema."),
    "scheduler": ("deletion_audit.commands.scheduler", "scheduler",
                  "Run the scheduled jobs alone (one instance leads)."),
    "log": ("deletion_audit.commands.log", "log_group", "The transparency log."),
    "keygen": ("deletion_audit.commands.keys", "keygen", "Generate an Ed25519 key pair."),
    "envelope": ("deletion_audit.commands.envelope", "envelope",
                 "Sign, co-sign and verify DSSE envelopes."),
    "manifest": ("deletion_audit.commands.manifest", "manifest_group", "Evidence manifests."),
    "org": ("deletion_audit.commands.people", "org_group", "Organisations."),
    "user": ("deletion_audit.commands.people", "user_group", "People."),
    "token": ("deletion_audit.commands.people", "token_group", "Personal access tokens."),
    "key": ("deletion_audit.commands.people", "key_group", "People's signing keys."),
    "session": ("deletion_audit.commands.session", "session_group",
                "On-site sessions: read and co-sign a record."),
    "demo": ("deletion_audit.commands.demo", "demo",
             "Tell case 1 end to end: evidence, case, agent, deletion, verdict, bundles."),
    "export": ("deletion_audit.commands.bundle", "export", "Export a case's evidence bundle."),
    "verify": ("deletion_audit.commands.bundle", "verify",
               "Verify an evidence bundle offline."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise click.ClickException(
                f"`{cmd_name}` needs the server extra: pip install 'deletion-audit[server]' "
                f"({exc.name} is missing)"
            ) from None
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deletion-audit")
def main() -> None:
    """deletion-audit: verifiable deletion of illegally collected personal data."""
