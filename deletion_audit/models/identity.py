"""People: organisations, users, their personal access tokens and signing keys, and the
internal audit table for account administration (never logged to the public log)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime, check_in


class OrgKind(StrEnum):
    """What an organisation is. Only a procuratorate may open cases."""

    PROCURATORATE = "procuratorate"
    COMPANY = "company"
    FORENSIC_LAB = "forensic_lab"
    GOVERNMENT = "government"
    OTHER = "other"


class KeyRevocationReason(StrEnum):
    """Codes, not free text: a key revocation is a public log event."""

    SUPERSEDED = "superseded"
    COMPROMISED = "compromised"
    LOST = "lost"
    RETIRED = "retired"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint(check_in("kind", OrgKind), name="kind"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class AccessToken(Base):
    """A personal access token. Only the SHA-256 of the secret is kept: the token is shown
    once, and a stolen database does not authenticate anyone."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    read_only: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class UserKey(Base):
    """A person's Ed25519 signing key; its registration is a public log event."""

    __tablename__ = "user_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    label: Mapped[str] = mapped_column(String(128))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The leaf of the logged registration: what a bundle chains this key to.
    registration_leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        CheckConstraint(
            "revocation_reason IS NULL OR " + check_in("revocation_reason", KeyRevocationReason),
            name="revocation_reason",
        ),
    )


class AuditRecord(Base):
    """Account administration (organisations, users, tokens): internal, not logged."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
