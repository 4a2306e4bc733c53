"""Ed25519 keys: identities, raw encodings and PEM key files.

A key's id is the lowercase hex SHA-256 of its raw 32-byte public key. It is what we emit as
the DSSE ``keyid``, but it is only ever a hint: verification is always by the key itself.

Private key files are PKCS#8 PEM, optionally encrypted, created with ``O_EXCL`` and mode
0600 so that an existing key is never overwritten and the secret is never, even briefly,
readable by others. Public key files are SubjectPublicKeyInfo PEM.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deletion_audit.core.errors import FormatError, KeyFileError

PUBLIC_KEY_SIZE = 32
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

StrPath = str | os.PathLike[str]


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key (RFC 8032 encoding) of a public or private key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Lowercase hex SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()


def public_key_from_raw(data: bytes) -> Ed25519PublicKey:
    if len(data) != PUBLIC_KEY_SIZE:
        raise FormatError(
            f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(data)}"
        )
    return Ed25519PublicKey.from_public_bytes(data)


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_path(path: StrPath) -> Path:
    """Where the public half of the private key file ``path`` lives: ``PATH.pub``."""
    return Path(os.fspath(path) + ".pub")


# -- writing ---------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int, what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a {what}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {what} file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        # Never leave a truncated key behind: it would block the next attempt (O_EXCL)
        # and look like a key.
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {what} file {path}: {exc.strerror}") from None


def save_private_key(
    path: StrPath, key: Ed25519PrivateKey, passphrase: bytes | None = None
) -> None:
    """Write ``key`` as PKCS#8 PEM to a new file with mode 0600; encrypted if a passphrase
    is given. Refuses (KeyFileError) if ``path`` exists."""
    if passphrase is not None and not passphrase:
        raise KeyFileError(f"empty passphrase for {path}; omit it to write an unencrypted key")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase is not None
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_new(Path(path), pem, PRIVATE_MODE, "private key")


def save_public_key(path: StrPath, public_key: Ed25519PublicKey) -> None:
    """Write ``public_key`` as SubjectPublicKeyInfo PEM to a new file (mode 0644)."""
    _write_new(Path(path), public_key_pem(public_key), PUBLIC_MODE, "public key")


def write_keypair(path: StrPath, passphrase: bytes | None = None) -> str:
    """Generate a key, write it to ``path`` and its public half to ``path.pub``; return its
    key id. Refuses if either file exists, and never leaves half a pair behind."""
    private_path, public_path = Path(path), public_key_path(path)
    for existing in (private_path, public_path):
        if existing.exists() or existing.is_symlink():
            raise KeyFileError(f"{existing} already exists; refusing to overwrite a key")
    key = generate()
    save_private_key(private_path, key, passphrase)
    try:
        save_public_key(public_path, key.public_key())
    except KeyFileError:
        private_path.unlink(missing_ok=True)
        raise
    return key_id(key.public_key())


# -- reading ---------------------------------------------------------------------------


def _read_pem(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"{what} file {path} is a directory") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise KeyFileError(f"{path} is not a PEM file")
    return data


def _is_private_pem(data: bytes) -> bool:
    return b"PRIVATE KEY-----" in data


def _is_encrypted_pem(data: bytes) -> bool:
    # PKCS#8 says ENCRYPTED PRIVATE KEY; legacy OpenSSL PEM encryption says Proc-Type.
    return b"ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data


def _private_from_pem(path: Path, data: bytes, passphrase: bytes | None) -> Ed25519PrivateKey:
    encrypted = _is_encrypted_pem(data)
    if encrypted and not passphrase:
        raise KeyFileError(f"{path} is encrypted: a passphrase is needed")
    if not encrypted and passphrase:
        raise KeyFileError(f"{path} is not encrypted, but a passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise KeyFileError(f"wrong passphrase for {path} (or a damaged key)") from None
        raise KeyFileError(f"{path} does not hold a readable private key: {exc}") from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} does not hold a readable private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a key of type {_kind(key)}; an Ed25519 key is needed")
    return key


def _kind(key: object) -> str:
    # cryptography's key classes are named like "ECPrivateKey" or "RSAPublicKey".
    name = type(key).__name__
    return name.removesuffix("PrivateKey").removesuffix("PublicKey") or name


def load_private_key(path: StrPath, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM file; KeyFileError (naming the path) if it
    is missing, not PEM, not Ed25519, or the passphrase is missing or wrong."""
    file = Path(path)
    data = _read_pem(file, "private key")
    if not _is_private_pem(data):
        raise KeyFileError(f"{file} is not a private key file")
    return _private_from_pem(file, data, passphrase)


def load_public_key(path: StrPath) -> Ed25519PublicKey:
    """Read an Ed25519 public key from a SubjectPublicKeyInfo PEM file.

    An unencrypted private key file is accepted too (its public half is taken), because
    people often point at the key they have rather than at its ``.pub``.
    """
    file = Path(path)
    data = _read_pem(file, "public key")
    if _is_private_pem(data):
        if _is_encrypted_pem(data):
            raise KeyFileError(
                f"{file} is an encrypted private key; give its public key ({file}.pub)"
            )
        return _private_from_pem(file, data, None).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{file} does not hold a readable public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{file} holds a key of type {_kind(key)}; an Ed25519 key is needed")
    return key
