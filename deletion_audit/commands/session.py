"""``session sign``: read an on-site session's record, then co-sign it with your own key.

The record is fetched from the server, checked (its digest, and that it is a session
record of that case and session), and its Chinese and English summary shown: that text is
inside the payload, so what you read is what you sign. The signature is made here, with the
envelope co-signing code, and only the signature is sent: the key never leaves this machine.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.commands._common import CliError
from deletion_audit.commands.keys import load_signing_key, passphrase_option
from deletion_audit.commands.people import TOKEN_ENV, _is_loopback
from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import CoreError, SignatureError
from deletion_audit.core.predicates import SessionPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement

_SESSION = re.compile(r"(?P<case>[0-9]+)/(?P<session>[0-9]+)")


@click.group("session")
def session_group() -> None:
    """On-site verification sessions (现场勘验)."""


def _client(server: str) -> httpx.Client:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"--server must be an http(s) URL, not {server!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise CliError("refusing to send a token over plain HTTP except to loopback; "
                       "use https://")
    return httpx.Client(base_url=server, timeout=30)


def _token(token: str | None, token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text("utf-8").strip()
        except OSError as exc:
            raise CliError(f"cannot read token file {token_file}: {exc.strerror}") from None
    token = (token or os.environ.get(TOKEN_ENV, "")).strip()
    if not token:
        raise CliError(f"give your personal access token: --token, --token-file or {TOKEN_ENV}")
    return token


def _call(client: httpx.Client, method: str, path: str, token: str, what: str,
          **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                  **kwargs)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the server: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 300 or not isinstance(body, dict):
        detail = body.get("message") if isinstance(body, dict) else response.text[:200]
        code = f" [{body['code']}]" if isinstance(body, dict) and "code" in body else ""
        raise CliError(f"{what}: the server answered {response.status_code}{code}: {detail}")
    return body


def _check_record(record: dict[str, Any], case_id: str, session_id: str) -> bytes:
    try:
        payload = b64decode(str(record["payload"]))
        predicate = expect_predicate(parse_statement(payload), SessionPredicate)
    except (KeyError, CoreError) as exc:
        raise CliError(f"the server's record of session {session_id} is not a session "
                       f"record: {exc}") from None
    if hashlib.sha256(payload).hexdigest() != record.get("digest"):
        raise CliError(f"the record of session {session_id} does not have the digest the "
                       "server gave for it; do not sign it")
    if (predicate.case_id, predicate.session_id) != (case_id, session_id):
        raise CliError(f"the server sent the record of session {predicate.case_id}/"
                       f"{predicate.session_id}, not {case_id}/{session_id}; do not sign it")
    return payload


@session_group.command("sign")
@click.argument("session_ref", metavar="CASE/SESSION")
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Your private key (PEM); its public key is registered to you.")
@passphrase_option
@click.option("--server", required=True, metavar="URL", help="The deletion-audit server.")
@click.option("--token", default=None, help=f"Your personal access token (or env {TOKEN_ENV}).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file holding your personal access token.")
@click.option("--yes", is_flag=True, help="Sign without asking (the summary is still shown).")
def sign_command(
    session_ref: str, key_file: Path, passphrase_file: Path | None, server: str,
    token: str | None, token_file: Path | None, yes: bool,
) -> None:
    """Read the record of session CASE/SESSION (e.g. 12/3) and co-sign it with your key."""
    match = _SESSION.fullmatch(session_ref)
    if match is None:
        raise click.BadParameter(f"{session_ref!r} is not CASE/SESSION, e.g. 12/3",
                                 param_hint="CASE/SESSION")
    case_id, session_id = match.group("case"), match.group("session")
    key = load_signing_key(key_file, passphrase_file)
    secret = _token(token, token_file)
    with _client(server) as client:
        result = sign_over_http(client, case_id=case_id, session_id=session_id, key=key,
                                token=secret, confirm=None if yes else _confirm)
    outcome = f", outcome {result['outcome']}" if result.get("outcome") else ""
    click.echo(f"signed by key {keys.key_id(key.public_key())}; session {session_id} is "
               f"{result['state']}{outcome}")


def _confirm() -> bool:
    return click.confirm("签署这份记录？Sign this record?", default=False)


def sign_over_http(
    client: httpx.Client, *, case_id: str, session_id: str, key: Ed25519PrivateKey,
    token: str, confirm: Callable[[], bool] | None,
) -> dict[str, Any]:
    """Fetch and check the record, show its summary, ask (unless ``confirm`` is None), sign
    it locally and post the signature; the server's answer. CliError on any refusal."""
    path = f"/api/v1/cases/{case_id}/sessions/{session_id}"
    record = _call(client, "GET", f"{path}/record", token, "fetching the record")
    payload = _check_record(record, case_id, session_id)
    click.echo(f"现场勘验记录 {case_id}/{session_id}（记录摘要 {record['digest']}）\n")
    click.echo(str(record["summary_zh"]) + "\n")
    click.echo(str(record["summary_en"]) + "\n")
    if confirm is not None and not confirm():
        raise CliError("not signed")
    current = _call(client, "GET", path, token, "fetching the session")
    existing = (dsse.Envelope.from_json(current["envelope"]) if current.get("envelope")
                else dsse.Envelope(payload, dsse.IN_TOTO_PAYLOAD_TYPE, ()))
    if existing.payload != payload:
        raise CliError(f"session {session_id}'s signed envelope holds another record than "
                       "the one shown; do not sign")
    try:
        signed = dsse.cosign(existing, key)
    except SignatureError as exc:
        raise CliError(f"session {session_id}: {exc}") from None
    signature = signed.signatures[-1]
    return _call(client, "POST", f"{path}/signatures", token, "posting the signature",
                 json={"kind": "dsse", "keyid": signature.keyid,
                       "sig": b64encode(signature.sig), "payload_sha256": record["digest"]})
