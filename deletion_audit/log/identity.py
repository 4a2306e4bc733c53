"""The installation's log identity: its origin, log key and service key.

``log init`` creates them once. Every start checks that the keys on disk are the ones the
database recorded, and that the database's tree is not smaller than the last checkpoint this
instance wrote outside the database — a restored backup must not silently fork the log.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.config import Settings
from deletion_audit.core import keys
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.checkpoint import open_checkpoint
from deletion_audit.core.errors import CoreError
from deletion_audit.core.note import NoteSigner, NoteVerifier
from deletion_audit.errors import StartupRefused
from deletion_audit.log import service
from deletion_audit.models import LogIdentity


@dataclass(frozen=True)
class LogKeys:
    origin: str
    log_signer: NoteSigner
    service_key: Ed25519PrivateKey

    @property
    def verifier(self) -> NoteVerifier:
        return self.log_signer.verifier


def get_identity(session: Session) -> LogIdentity | None:
    return session.execute(select(LogIdentity).where(LogIdentity.id == 1)).scalar_one_or_none()


def _registration(
    subject: str, origin: str, key: Ed25519PrivateKey, now: datetime
) -> dict[str, str]:
    public = key.public_key()
    return {
        "keyId": keys.key_id(public),
        "publicKey": b64encode(keys.raw_public(public)),
        "subjectType": subject,
        "subjectId": origin,
        "registeredAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def init_log(session: Session, *, settings: Settings, now: datetime) -> LogKeys:
    """Create the origin and both keys, record them, and log both registrations.

    Refuses if the database already has an identity or a key file already exists.
    """
    if get_identity(session) is not None:
        raise StartupRefused("this database already has a log identity; `log init` runs once")
    origin = settings.log_origin
    for path in (settings.log_key_path, settings.service_key_path):
        if path.exists():
            raise StartupRefused(f"{path} already exists; refusing to overwrite a key")
        path.parent.mkdir(parents=True, exist_ok=True)
    log_key, service_key = keys.generate(), keys.generate()
    keys.save_private_key(settings.log_key_path, log_key)
    try:
        keys.save_private_key(settings.service_key_path, service_key)
    except CoreError:
        settings.log_key_path.unlink()
        raise
    session.add(
        LogIdentity(
            id=1, origin=origin, created_at=now,
            log_public_key=keys.raw_public(log_key.public_key()),
            service_public_key=keys.raw_public(service_key.public_key()),
        )
    )
    signer = NoteSigner(origin, log_key)
    log_reg = _registration("log", origin, log_key, now)
    log_reg["noteVerifierKey"] = signer.verifier.vkey()
    service.append_event(session, event_type="key-registration", event=log_reg, now=now)
    service.append_event(
        session, event_type="key-registration",
        event=_registration("service", origin, service_key, now), now=now,
    )
    return LogKeys(origin=origin, log_signer=signer, service_key=service_key)


def load_keys(session: Session, settings: Settings) -> LogKeys:
    """Load the private keys and check them against the database's identity."""
    identity = get_identity(session)
    if identity is None:
        raise StartupRefused("the database has no log identity: run `deletion-audit log init`")
    try:
        log_key = keys.load_private_key(settings.log_key_path)
        service_key = keys.load_private_key(settings.service_key_path)
    except CoreError as exc:
        raise StartupRefused(str(exc)) from None
    if keys.raw_public(log_key.public_key()) != identity.log_public_key:
        raise StartupRefused(
            f"the log key at {settings.log_key_path} is not this database's log key"
        )
    if keys.raw_public(service_key.public_key()) != identity.service_public_key:
        raise StartupRefused(
            f"the service key at {settings.service_key_path} is not this database's service key"
        )
    return LogKeys(
        origin=identity.origin, log_signer=NoteSigner(identity.origin, log_key),
        service_key=service_key,
    )


def check_not_rolled_back(session: Session, *, keys_: LogKeys, checkpoint_path: Path) -> None:
    """Refuse to run on a tree smaller than (or forked from) the last checkpoint recorded."""
    if not checkpoint_path.exists():
        return
    try:
        recorded = open_checkpoint(checkpoint_path.read_text("utf-8"), keys_.verifier)
    except (CoreError, UnicodeDecodeError) as exc:
        raise StartupRefused(f"{checkpoint_path} is not a checkpoint of this log: {exc}") from None
    size = service.current_size(session)
    if size < recorded.size:
        raise StartupRefused(
            f"the database's log has {size} leaves but this instance already signed a "
            f"checkpoint of {recorded.size} ({checkpoint_path}); a restored backup would "
            "fork the log — restore the newer database instead"
        )
    stored = service.checkpoint_at(session, recorded.size)
    if stored is None or stored.root != recorded.root_hash:
        raise StartupRefused(
            f"the database's tree at size {recorded.size} differs from the checkpoint in "
            f"{checkpoint_path}: the log would fork"
        )


def record_checkpoint(path: Path, note: str) -> None:
    """Atomically replace the checkpoint kept outside the database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checkpoint.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(note)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
