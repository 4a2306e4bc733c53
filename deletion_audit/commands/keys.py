"""``keygen``, and the key-file options the envelope commands share."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.commands._common import CliError
from deletion_audit.core import keys
from deletion_audit.core.errors import KeyFileError


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase in ``path`` without its final line break, or ``None`` for no file."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    # Editors and `echo` end files with a newline that is not part of the passphrase.
    passphrase = data.removesuffix(b"\n").removesuffix(b"\r")
    if not passphrase:
        raise CliError(f"passphrase file {path} is empty")
    return passphrase


def load_signing_key(path: Path, passphrase_file: Path | None) -> Ed25519PrivateKey:
    passphrase = read_passphrase(passphrase_file)
    try:
        return keys.load_private_key(path, passphrase)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None


passphrase_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File holding the key's passphrase (its final newline is ignored).",
)


@click.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@passphrase_option
def keygen(path: Path, passphrase_file: Path | None) -> None:
    """Generate an Ed25519 key pair: PATH (private, mode 0600) and PATH.pub.

    Prints the key id (hex SHA-256 of the raw public key). Never overwrites a key.
    """
    passphrase = read_passphrase(passphrase_file)
    try:
        key_id = keys.write_keypair(path, passphrase)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {path} and {keys.public_key_path(path)}", err=True)
    click.echo(key_id)
