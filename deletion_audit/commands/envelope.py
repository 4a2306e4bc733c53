"""``envelope sign | cosign | verify``: DSSE envelopes around in-toto Statements.

Generic tools: any valid in-toto Statement v1 is accepted, whatever its predicate type. Our
own predicates are checked where they are consumed (ingest), not here.

``verify`` exits 0 when verified, 1 when the envelope is readable but not verified, and 4
when it cannot verify at all (unreadable envelope or key file) — the codes DESIGN.md gives
``deletion-audit verify`` — and 2 stays click's usage error.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deletion_audit.commands._common import CliError
from deletion_audit.commands.keys import load_signing_key, passphrase_option
from deletion_audit.core import dsse, keys
from deletion_audit.core.errors import CoreError, FormatError, KeyFileError, SignatureError
from deletion_audit.core.statements import Statement, Subject, parse_statement, statement_id

EXIT_NOT_VERIFIED = 1
EXIT_CANNOT_VERIFY = 4

_FilePath = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, what: str, exit_code: int = 1) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", exit_code) from None


def _load_envelope(path: Path, exit_code: int = 1) -> dsse.Envelope:
    data = _read(path, "envelope", exit_code)
    try:
        return dsse.Envelope.from_json(data)
    except FormatError as exc:
        raise CliError(f"{path}: {exc}", exit_code) from None


def _write_output(out: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to ``out`` (``-`` is stdout); never over an existing file unless
    ``force``, and then atomically, so a failed write leaves the old file whole."""
    if str(out) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    if not force:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise CliError(f"{out} already exists; use --force to overwrite it") from None
        except OSError as exc:
            raise CliError(f"cannot create {out}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            out.unlink(missing_ok=True)
            raise CliError(f"cannot write {out}: {exc.strerror}") from None
        return
    try:
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.chmod(0o644)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {out}: {exc.strerror}") from None


@click.group("envelope")
def envelope() -> None:
    """Sign, co-sign and verify DSSE envelopes carrying in-toto Statements."""


@envelope.command("sign")
@click.argument("statement_file", metavar="STATEMENT.json", type=_FilePath)
@click.option("--key", "key_file", required=True, type=_FilePath, help="Private key (PEM).")
@passphrase_option
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False,
              path_type=Path, allow_dash=True), help="Envelope file to write (- for stdout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def sign_command(
    statement_file: Path, key_file: Path, passphrase_file: Path | None, out: Path, force: bool
) -> None:
    """Sign an in-toto Statement v1 file as it is, byte for byte, into a DSSE envelope."""
    payload = _read(statement_file, "statement")
    try:
        parse_statement(payload)
    except FormatError as exc:
        raise CliError(f"{statement_file}: {exc}") from None
    key = load_signing_key(key_file, passphrase_file)
    signed = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, key)
    _write_output(out, signed.to_json(), force=force)
    click.echo(f"signed by key {keys.key_id(key.public_key())}", err=True)


@envelope.command("cosign")
@click.argument("envelope_file", metavar="ENVELOPE.json", type=_FilePath)
@click.option("--key", "key_file", required=True, type=_FilePath, help="Private key (PEM).")
@passphrase_option
@click.option("-o", "--output", "out", default="-", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
              help="Envelope file to write (- for stdout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def cosign_command(
    envelope_file: Path, key_file: Path, passphrase_file: Path | None, out: Path, force: bool
) -> None:
    """Add a signature to an envelope (one per key)."""
    existing = _load_envelope(envelope_file)
    key = load_signing_key(key_file, passphrase_file)
    try:
        signed = dsse.cosign(existing, key)
    except SignatureError as exc:
        raise CliError(f"{envelope_file}: {exc}") from None
    _write_output(out, signed.to_json(), force=force)
    click.echo(f"co-signed by key {keys.key_id(key.public_key())}", err=True)


def _load_trusted(paths: tuple[Path, ...]) -> list[Ed25519PublicKey]:
    trusted = []
    for path in paths:
        try:
            trusted.append(keys.load_public_key(path))
        except KeyFileError as exc:
            raise CliError(str(exc), EXIT_CANNOT_VERIFY) from None
    return trusted


def _subject_line(subject: Subject) -> str:
    name = subject.name if subject.name is not None else "(unnamed)"
    if subject.sha256 is not None:
        return f"subject: {name} sha256:{subject.sha256}"
    digests = " ".join(f"{alg}:{value}" for alg, value in sorted(subject.digest.items()))
    return f"subject: {name} {digests}"


def _report(verified: dsse.VerifiedEnvelope, statement: Statement | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "verified": True,
        "keyIds": list(verified.key_ids),
        "payloadType": verified.payload_type,
        "statementId": statement_id(verified.payload),
    }
    if statement is not None:
        report["predicateType"] = statement.predicate_type
        report["subjects"] = [s.to_json_dict() for s in statement.subject]
    return report


@envelope.command("verify")
@click.argument("envelope_file", metavar="ENVELOPE.json", type=_FilePath)
@click.option("--pub", "pub_files", multiple=True, required=True, type=_FilePath,
              help="A trusted public key (PEM); repeat for several.")
@click.option("--threshold", default=1, show_default=True, type=int,
              help="How many distinct trusted keys must have signed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify_command(
    envelope_file: Path, pub_files: tuple[Path, ...], threshold: int, as_json: bool
) -> None:
    """Verify an envelope against trusted keys and show what it states.

    Exits 0 verified, 1 not verified, 4 unreadable envelope or key file.
    """
    trusted = _load_trusted(pub_files)
    signed = _load_envelope(envelope_file, EXIT_CANNOT_VERIFY)
    try:
        verified = dsse.verify(signed, trusted, threshold)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--threshold") from None
    except SignatureError as exc:
        raise CliError(f"{envelope_file}: not verified: {exc}", EXIT_NOT_VERIFIED) from None
    statement = None
    if verified.payload_type == dsse.IN_TOTO_PAYLOAD_TYPE:
        try:
            statement = parse_statement(verified.payload)
        except CoreError as exc:
            raise CliError(
                f"{envelope_file}: signatures verify, but the payload is not a valid "
                f"in-toto Statement: {exc}",
                EXIT_NOT_VERIFIED,
            ) from None
    if as_json:
        click.echo(json.dumps(_report(verified, statement), indent=2))
        return
    click.echo(
        f"verified: {len(verified.key_ids)} signature(s) of {threshold} required, "
        f"by key(s) {', '.join(verified.key_ids)}"
    )
    if statement is None:
        click.echo(f"payload type: {verified.payload_type} ({len(verified.payload)} bytes)")
        return
    click.echo(f"predicate type: {statement.predicate_type}")
    for subject in statement.subject:
        click.echo(_subject_line(subject))
