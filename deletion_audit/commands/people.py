"""``org``, ``user``, ``token`` and ``key``: organisations, people, personal access tokens
and people's signing keys. Account changes go to the internal audit table."""

from __future__ import annotations

import getpass
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import click
import httpx
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from deletion_audit.clock import SystemClock
from deletion_audit.commands._common import CliError
from deletion_audit.commands._db import db_options, load_settings
from deletion_audit.core import keys as core_keys
from deletion_audit.core.errors import KeyFileError
from deletion_audit.db import Database
from deletion_audit.errors import AuditError
from deletion_audit.identity import keys, service, tokens
from deletion_audit.models import OrgKind

TOKEN_ENV = "DELETION_AUDIT_TOKEN"  # noqa: S105 - a variable name, not a secret


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _write(data_dir: Path | None, db_url: str | None) -> Iterator[Session]:
    """One transaction on the configured database; domain errors become one CLI line."""
    settings = load_settings(data_dir, db_url)
    db = Database(settings.database_url)
    try:
        with db.write() as session:
            yield session
    except AuditError as exc:
        raise CliError(exc.message) from None
    except (OperationalError, ProgrammingError) as exc:
        raise CliError(
            f"the database at {settings.database_url} is not ready ({exc.orig}); "
            "run `deletion-audit db upgrade` first"
        ) from None
    finally:
        db.dispose()


# -- org -------------------------------------------------------------------------------


@click.group("org")
def org_group() -> None:
    """Organisations: procuratorates, companies, labs, public bodies."""


@org_group.command("add")
@click.argument("name")
@click.option("--display-name", default=None, help="Shown name, e.g. 上海市青浦区人民检察院.")
@click.option("--kind", type=click.Choice([k.value for k in OrgKind]), default="other",
              show_default=True, help="Only a procuratorate's people open cases.")
@db_options
def org_add(
    name: str, display_name: str | None, kind: str, data_dir: Path | None, db_url: str | None
) -> None:
    """Add an organisation NAME (lowercase letters, digits, '.', '_', '-')."""
    with _write(data_dir, db_url) as session:
        org = service.create_organisation(session, name=name, display_name=display_name,
                                          kind=OrgKind(kind), actor=_actor(),
                                          now=SystemClock().now())
        click.echo(f"organisation {org.name} ({org.kind}) added")


# -- user ------------------------------------------------------------------------------


@click.group("user")
def user_group() -> None:
    """People, each belonging to one organisation."""


@user_group.command("add")
@click.argument("name")
@click.option("--org", "org_name", required=True, help="The organisation's name.")
@click.option("--display-name", default=None, help="Shown name, e.g. 张检察官.")
@db_options
def user_add(
    name: str, org_name: str, display_name: str | None, data_dir: Path | None,
    db_url: str | None,
) -> None:
    """Add a user NAME to organisation ORG."""
    with _write(data_dir, db_url) as session:
        org = service.get_organisation(session, org_name)
        user = service.create_user(session, name=name, organisation=org,
                                   display_name=display_name, actor=_actor(),
                                   now=SystemClock().now())
        click.echo(f"user {user.name} added to {org.name}")


@user_group.command("disable")
@click.argument("name")
@db_options
def user_disable(name: str, data_dir: Path | None, db_url: str | None) -> None:
    """Disable user NAME: every token of theirs stops working at once."""
    with _write(data_dir, db_url) as session:
        user = service.get_user(session, name)
        service.disable_user(session, user=user, actor=_actor(), now=SystemClock().now())
        click.echo(f"user {name} disabled")


# -- token -----------------------------------------------------------------------------


@click.group("token")
def token_group() -> None:
    """Personal access tokens (shown once, stored hashed)."""


@token_group.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--days", type=click.IntRange(1, tokens.MAX_DAYS), default=tokens.DEFAULT_DAYS,
              show_default=True, help="Days until the token expires.")
@click.option("--read-only", is_flag=True, help="The token may only read (GET).")
@click.option("--note", default="", help="What the token is for.")
@db_options
def token_create(
    user_name: str, days: int, read_only: bool, note: str, data_dir: Path | None,
    db_url: str | None,
) -> None:
    """Create a token for USER and print it once (on stdout; details on stderr)."""
    with _write(data_dir, db_url) as session:
        user = service.get_user(session, user_name)
        issued = tokens.create_token(session, user=user, days=days, read_only=read_only,
                                     note=note, actor=_actor(), now=SystemClock().now())
    token = issued.token
    scope = "read-only" if token.read_only else "read-write"
    click.echo(f"token {token.public_id} for {user_name}, {scope}, expires "
               f"{token.expires_at.isoformat()}; it is shown only now", err=True)
    click.echo(issued.secret)


@token_group.command("list")
@click.argument("user_name", metavar="USER")
@db_options
def token_list(user_name: str, data_dir: Path | None, db_url: str | None) -> None:
    """List USER's tokens (ids, never secrets)."""
    with _write(data_dir, db_url) as session:
        user = service.get_user(session, user_name)
        rows = tokens.list_tokens(session, user=user)
        click.echo("id\tcreated\texpires\tlast used\taccess\tstatus\tnote")
        for t in rows:
            status = "revoked" if t.revoked_at else "active"
            last = t.last_used_at.isoformat() if t.last_used_at else "never"
            access = "read-only" if t.read_only else "read-write"
            click.echo(f"{t.public_id}\t{t.created_at.isoformat()}\t{t.expires_at.isoformat()}"
                       f"\t{last}\t{access}\t{status}\t{t.note}")


@token_group.command("revoke")
@click.argument("token_id")
@db_options
def token_revoke(token_id: str, data_dir: Path | None, db_url: str | None) -> None:
    """Revoke the token TOKEN_ID (tok_...)."""
    with _write(data_dir, db_url) as session:
        tokens.revoke_token(session, public_id=token_id, actor=_actor(),
                            now=SystemClock().now())
    click.echo(f"token {token_id} revoked")


# -- key -------------------------------------------------------------------------------


@click.group("key")
def key_group() -> None:
    """People's signing keys (each registration is a public log event)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register_over_http(
    client: httpx.Client, *, token: str, public_key_pem: str, label: str
) -> dict[str, object]:
    """POST a key to ``/api/v1/users/me/keys`` as the token's owner; CliError on refusal."""
    try:
        response = client.post(
            "/api/v1/users/me/keys", json={"public_key": public_key_pem, "label": label},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the server: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 201:
        message = body.get("message") if isinstance(body, dict) else None
        raise CliError(f"the server refused the key ({response.status_code}): "
                       f"{message or response.text[:200]}")
    if not isinstance(body, dict):
        raise CliError("the server answered with something that is not a key")
    return body


def _read_token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            return token_file.read_text("utf-8").strip()
        except OSError as exc:
            raise CliError(f"cannot read token file {token_file}: {exc.strerror}") from None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise CliError(f"--server needs a token: --token-file FILE or {TOKEN_ENV}")
    return token


@key_group.command("register")
@click.argument("pub", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--label", default="", help="A name for the key, e.g. 'office laptop'.")
@click.option("--server", default=None, metavar="URL",
              help="Register over the API as the token's owner (the usual way).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"File holding your personal access token (or env {TOKEN_ENV}).")
@click.option("--user", "user_name", default=None,
              help="Register for USER directly in the database (administrators).")
@db_options
def key_register(
    pub: Path, label: str, server: str | None, token_file: Path | None,
    user_name: str | None, data_dir: Path | None, db_url: str | None,
) -> None:
    """Register the Ed25519 public key PUB (a .pub from `keygen`); prints its key id."""
    try:
        public = core_keys.load_public_key(pub)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    if server is not None:
        if user_name is not None:
            raise CliError("give --server or --user, not both")
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--server must be an http(s) URL, not {server!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise CliError("refusing to send a token over plain HTTP except to loopback; "
                           "use https://")
        token = _read_token(token_file)
        with httpx.Client(base_url=server, timeout=30) as client:
            body = register_over_http(client, token=token, label=label,
                                      public_key_pem=core_keys.public_key_pem(public).decode())
        click.echo(str(body.get("key_id")))
        return
    if user_name is None:
        raise CliError("give --server URL (as yourself) or --user NAME (in the database)")
    with _write(data_dir, db_url) as session:
        user = service.get_user(session, user_name)
        logged = keys.register_user_key(session, user=user,
                                        public_key=core_keys.raw_public(public), label=label,
                                        now=SystemClock().now())
        click.echo(logged.row.key_id)
