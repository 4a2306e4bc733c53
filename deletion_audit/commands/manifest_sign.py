"""``manifest sign | verify``: the examiner's signature over a manifest, and checking a
manifest against its envelope.

``verify`` exits 0 verified, 1 when something does not match (naming each failed check), 4
when it cannot verify (no key given, unreadable input), like ``envelope verify``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deletion_audit.commands._common import CliError
from deletion_audit.commands.envelope import _write_output
from deletion_audit.commands.keys import load_signing_key, passphrase_option
from deletion_audit.core import dsse, keys
from deletion_audit.core import manifest as mf
from deletion_audit.core.errors import FormatError, KeyFileError
from deletion_audit.core.statements import statement_bytes

EXIT_NOT_VERIFIED = 1
EXIT_CANNOT_VERIFY = 4

_FilePath = click.Path(dir_okay=False, path_type=Path)


def _validated(path: Path) -> mf.ManifestSummary:
    try:
        return mf.validate_manifest(path)
    except mf.ManifestError as exc:
        raise CliError(f"{path}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot read manifest {path}: {exc.strerror}") from None


@click.command("sign")
@click.argument("manifest", metavar="MANIFEST.jsonl", type=_FilePath)
@click.option("--key", "key_file", required=True, type=_FilePath,
              help="The examiner's private key (PEM).")
@passphrase_option
@click.option("-o", "--output", "out", required=True, type=click.Path(
              dir_okay=False, path_type=Path, allow_dash=True),
              help="Envelope file to write (- for stdout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def sign_command(manifest: Path, key_file: Path, passphrase_file: Path | None, out: Path,
                 force: bool) -> None:
    """Validate a manifest fully and sign its statement into a DSSE envelope."""
    summary = _validated(manifest)
    key = load_signing_key(key_file, passphrase_file)
    signer = keys.key_id(key.public_key())
    named = summary.header.examiner_key_id
    if named is not None and named != signer:
        raise CliError(f"{manifest} names examiner key {named}, but {key_file} is key "
                       f"{signer}: sign with the key the header names")
    statement = mf.statement_for(summary, manifest.name)
    envelope = dsse.sign(statement_bytes(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    _write_output(out, envelope.to_json(), force=force)
    click.echo(f"signed {manifest.name}: {summary.count} items, root {summary.root_hex}, "
               f"by key {signer}", err=True)


def _load_envelope(path: Path) -> dsse.Envelope:
    try:
        return dsse.Envelope.from_json(path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read envelope {path}: {exc.strerror}", EXIT_CANNOT_VERIFY) \
            from None
    except FormatError as exc:
        raise CliError(f"{path}: {exc}", EXIT_CANNOT_VERIFY) from None


def _report(result: mf.ManifestVerification, signature: str) -> dict[str, Any]:
    summary = result.summary
    return {
        "verified": signature == "verified",
        "checks": {"digest": "ok", "count": "ok", "root": "ok", "header": "ok",
                   "signature": signature},
        "case": summary.header.case,
        "count": summary.count,
        "root": summary.root_hex,
        "sha256": summary.sha256,
        "keyIds": list(result.key_ids),
        "signerHints": list(result.signer_hints),
    }


@click.command("verify")
@click.argument("manifest", metavar="MANIFEST.jsonl", type=_FilePath)
@click.argument("envelope_file", metavar="ENVELOPE.json", type=_FilePath)
@click.option("--pub", "pub_files", multiple=True, type=_FilePath,
              help="The examiner's public key (PEM); repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify_command(manifest: Path, envelope_file: Path, pub_files: tuple[Path, ...],
                   as_json: bool) -> None:
    """Check a manifest's digest, count, root and header against its signed statement, and
    the signature against --pub.

    Exits 0 verified, 1 on a mismatch (naming each failed check), 4 when it cannot
    verify: no --pub given (the key id is shown, unverified) or unreadable input.
    """
    envelope = _load_envelope(envelope_file)
    trusted = []
    for path in pub_files:
        try:
            trusted.append(keys.load_public_key(path))
        except KeyFileError as exc:
            raise CliError(str(exc), EXIT_CANNOT_VERIFY) from None
    try:
        if trusted:
            result = mf.verify_manifest(manifest, envelope, trusted)
        else:
            result = mf.check_manifest_envelope(manifest, envelope)
    except mf.ManifestMismatchError as exc:
        raise CliError(f"{manifest}: not verified: {exc}", EXIT_NOT_VERIFIED) from None
    except mf.ManifestError as exc:
        raise CliError(f"{manifest}: not verified: {exc}", EXIT_NOT_VERIFIED) from None
    except OSError as exc:
        raise CliError(f"cannot read manifest {manifest}: {exc.strerror}",
                       EXIT_CANNOT_VERIFY) from None
    report = _report(result, "verified" if trusted else "unverified")
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(f"{manifest.name}: digest, count ({report['count']}), root and header "
                   f"match the signed statement")
        click.echo(f"  case: {report['case']}")
        click.echo(f"  root: {report['root']}")
    if not trusted:
        hints = ", ".join(result.signer_hints) or "(none)"
        raise CliError(f"signature unverified: the envelope names key id(s) {hints}; "
                       f"give --pub with the examiner's public key to verify it",
                       EXIT_CANNOT_VERIFY)
    if not as_json:
        click.echo(f"verified: signed by key(s) {', '.join(result.key_ids)}")
