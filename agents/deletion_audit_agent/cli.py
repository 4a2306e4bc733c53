"""The ``deletion-audit-agent`` command line: thin shells over :mod:`agent`.

Errors print one line that says what to do and exit 1 (3 when the server's log is not
consistent with what this agent saw: a server to stop trusting, not a glitch).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from deletion_audit.core.errors import CoreError
from deletion_audit_agent import __version__
from deletion_audit_agent.agent import Agent, AgentError, Discovery, ScanResult, ServerScope
from deletion_audit_agent.client import ClientError, Refused
from deletion_audit_agent.config import AgentConfig, ConfigError, load_config
from deletion_audit_agent.enroll import EnrollError, enroll
from deletion_audit_agent.monitor import LogForkError
from deletion_audit_agent.scanning import ProofCheckError
from deletion_audit_agent.state import State

DEFAULT_CONFIG = Path("/etc/deletion-audit/agent.toml")
EXIT_FORK = 3

_config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
    show_default=True, help="The agent's TOML configuration.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")

_EXPECTED = (AgentError, ConfigError, ClientError, Refused, EnrollError, ProofCheckError,
             CoreError)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except LogForkError as exc:
        fail(f"{exc}; refusing this server (keep the state directory as evidence)", EXIT_FORK)
    except _EXPECTED as exc:
        fail(str(exc))


@contextmanager
def opened(config_path: Path) -> Iterator[tuple[AgentConfig, State]]:
    with errors():
        config = load_config(config_path)
        state = State(config.state_dir)
        try:
            yield config, state
        finally:
            state.close()


@contextmanager
def working(config_path: Path) -> Iterator[Agent]:
    with opened(config_path) as (config, state):
        agent = Agent(config, state)
        try:
            yield agent
        finally:
            agent.close()


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int], None] | None]:
    """A live count on a terminal; nothing in pipes and daemons."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed} objects"),
                  transient=True) as bar:
        task = bar.add_task(label)
        yield lambda n: bar.advance(task, n)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deletion-audit-agent")
def main() -> None:
    """The deletion-audit agent: looks for manifest items on this host, deletes, attests."""


@main.command("enroll")
@_config_option
@click.option("--server", help="The service's URL (https://, or http:// on loopback only).")
@click.option("--token", required=True, help="The one-time enrollment token.")
def enroll_command(config_path: Path, server: str | None, token: str) -> None:
    """Check the server's log key against the token, make this agent's key, register it."""
    with opened(config_path) as (config, state):
        url = server or config.server
        if not url:
            fail("no server: pass --server URL or set server in the configuration")
        enrollment = enroll(state, server=url, token=token, backoff=config.backoff)
        click.echo(f"enrolled as {enrollment.agent_id} in case {enrollment.case_id} at "
                   f"{enrollment.server}")


def _scopes(agent: Agent, scope_id: str | None) -> list[ServerScope]:
    return [agent.scope(scope_id)] if scope_id else agent.scopes()


def _print_scan(result: ScanResult, as_json: bool) -> None:
    if as_json:
        return
    skipped = sum(result.skipped.values())
    click.echo(f"scope {result.scope_id}: {result.objects} objects, {result.present} manifest "
               f"item(s) present, {skipped} skipped, coverage {result.coverage}"
               f"{'' if result.challenged else ' (unchallenged)'}; "
               f"{result.statements} statement(s), {result.flush.pending} waiting to send")


@main.command("scan")
@_config_option
@click.option("--scope", "scope_id", help="One bound scope (default: all).")
@click.option("--unchallenged", is_flag=True,
              help="Skip the challenge and reuse cached hashes (the verdict does not count it).")
@_json_option
def scan_command(config_path: Path, scope_id: str | None, unchallenged: bool,
                 as_json: bool) -> None:
    """Look for manifest items in the bound scopes and attest what was found."""
    with working(config_path) as agent:
        scopes = _scopes(agent, scope_id)
        # Deletions a crash left unattested go out first: they happened before this scan.
        agent.attest_deletions({s.key: s for s in scopes})
        agent.flush()
        results, failed = [], []
        for scope in scopes:
            try:
                with progress_bar(f"scope {scope.key}") as advance:
                    result = agent.scan(scope, challenged=not unchallenged, progress=advance)
            except (AgentError, ConfigError, ProofCheckError, CoreError, OSError) as exc:
                # One scope this host cannot scan does not stop the others.
                click.echo(f"error: scope {scope.key}: {exc}", err=True)
                failed.append({"scope_id": scope.key, "error": str(exc)})
                continue
            _print_scan(result, as_json)
            results.append(result.summary())
        if as_json:
            click.echo(json.dumps({"scans": results, "failed": failed}))
        refused = sum(r["dead_letters"] for r in results)
        if refused:
            fail(f"the server refused {refused} statement(s); `deletion-audit-agent status` "
                 "lists the dead letters and why")
        if failed:
            sys.exit(1)


def _list_found(found: Discovery) -> None:
    for item in found.present:
        for locator in item.locators:
            click.echo(f"  {item.digest}  {locator}")


@main.command("delete")
@_config_option
@click.option("--scope", "scope_id", required=True, help="The bound scope to delete from.")
@click.option("--yes", is_flag=True, help="Really delete (without it: a dry run).")
@_json_option
def delete_command(config_path: Path, scope_id: str, yes: bool, as_json: bool) -> None:
    """Delete the manifest items found in a scope (a dry run unless --yes), attest the
    deletion, then re-scan."""
    with working(config_path) as agent:
        agent.check_log()
        scope = agent.scope(scope_id)
        agent.attest_deletions({scope.key: scope})
        agent.flush()
        with progress_bar(f"scope {scope.key}") as advance:
            found = agent.discover(scope, progress=advance)
        copies = sum(len(f.locators) for f in found.present)
        if not yes:
            if as_json:
                click.echo(json.dumps({"dry_run": True, "items": [
                    {"digest": f.digest, "copies": len(f.locators)} for f in found.present]}))
            else:
                click.echo(f"would delete {copies} cop(ies) of {len(found.present)} manifest "
                           f"item(s) from scope {scope.key} (dry run; --yes to delete):")
                _list_found(found)
            return
        outcomes = agent.delete(found)
        failed = [(d, loc, err) for d, loc, err in outcomes if err]
        attested = agent.attest_deletions({scope.key: scope})
        rescan = agent.scan(scope)
        summary: dict[str, Any] = {
            "deleted": len(outcomes) - len(failed), "failed": len(failed),
            "deletion_statements": attested, "rescan": rescan.summary()}
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo(f"deleted {summary['deleted']} of {copies} cop(ies); "
                       f"{attested} deletion statement(s)")
            for digest, locator, err in failed:
                click.echo(f"  not deleted: {digest}  {locator}: {err}")
            _print_scan(rescan, False)
        if failed or rescan.present:
            sys.exit(1)


@main.command("run")
@_config_option
@click.option("--once", is_flag=True, help="One cycle, then exit (for tests and cron).")
@click.option("--enroll-token", envvar="DELETION_AUDIT_AGENT_TOKEN", default=None,
              help="Not enrolled yet: enroll with this token first, retrying until the server "
              "answers (also from $DELETION_AUDIT_AGENT_TOKEN).")
def run_command(config_path: Path, once: bool, enroll_token: str | None) -> None:
    """Heartbeat, run the server's tasks and send the outbox, forever."""
    from deletion_audit_agent.daemon import enroll_until_answered, run_forever

    with opened(config_path) as (config, state):
        if state.enrollment is None:
            if not enroll_token:
                fail("this host is not enrolled: run `deletion-audit-agent enroll` or give "
                     "`run --enroll-token TOKEN`")
            enroll_until_answered(state, server=config.server, token=enroll_token,
                                  backoff=config.backoff)
    with working(config_path) as agent:
        run_forever(agent, once=once)


def _status(config: AgentConfig, state: State) -> dict[str, Any]:
    enrollment = state.enrollment
    checkpoint = state.get("checkpoint")
    size = None
    if checkpoint:
        from deletion_audit.core.checkpoint import parse_checkpoint_text

        size = parse_checkpoint_text(checkpoint).size
    return {
        "version": __version__,
        "config": str(config.path),
        "enrolled": enrollment is not None,
        "agent_id": enrollment.agent_id if enrollment else None,
        "server": enrollment.server if enrollment else None,
        "case_id": enrollment.case_id if enrollment else None,
        "scopes": [{"id": s["id"], "name": s.get("name"), "kind": s.get("kind"),
                    "configured": str(s["id"]) in config.scopes}
                   for s in state.get("scopes") or []],
        "last_scans": state.last_scans(),
        "outbox": len(state.outbox()),
        "sent": state.sent_count(),
        "last_receipt": state.last_receipt(),
        "dead_letters": [d.__dict__ for d in state.dead_letters()],
        "pending_deletions": sum(len(v) for v in state.pending_deletions().values()),
        "unresolved_deletions": sum(len(v) for v in state.deletion_intents().values()),
        "last_contact": state.get("last_contact"),
        "last_checkpoint_size": size,
    }


@main.command("status")
@_config_option
@_json_option
def status(config_path: Path, as_json: bool) -> None:
    """Enrollment, bound scopes, last scans, outbox, dead letters, last contact.
    Exits 1 when this host is not enrolled."""
    if not config_path.exists():
        # Not configured is the plainest "not enrolled": say so in the requested form.
        info: dict[str, Any] = {"version": __version__, "config": str(config_path),
                                "enrolled": False, "error": "no configuration file"}
        click.echo(json.dumps(info) if as_json else
                   f"not enrolled: no configuration at {config_path}")
        sys.exit(1)
    with opened(config_path) as (config, state):
        info = _status(config, state)
    if as_json:
        click.echo(json.dumps(info))
    elif not info["enrolled"]:
        click.echo(f"not enrolled (state {config.state_dir})")
    else:
        click.echo(f"agent {info['agent_id']} of case {info['case_id']} at {info['server']}")
        for scope in info["scopes"]:
            last = info["last_scans"].get(str(scope["id"]))
            seen = (f"last scan {last['finished_at']}: {last['present']} present, coverage "
                    f"{last['coverage']}" if last else "never scanned")
            click.echo(f"  scope {scope['id']} {scope['name']} ({scope['kind']}): {seen}")
        click.echo(f"outbox {info['outbox']}, sent {info['sent']}, dead letters "
                   f"{len(info['dead_letters'])}, deletions to attest "
                   f"{info['pending_deletions']} (+{info['unresolved_deletions']} cut off)")
        for dead in info["dead_letters"]:
            click.echo(f"  dead letter seq {dead['seq']} ({dead['kind']}): {dead['status']} "
                       f"{dead['code']}: {dead['message']}")
        click.echo(f"last contact {info['last_contact']}, last checkpoint size "
                   f"{info['last_checkpoint_size']}")
    sys.exit(0 if info["enrolled"] else 1)
