"""On-site verification sessions (现场勘验): who takes part, the record they sign, and the
co-signatures that close it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class SessionState(StrEnum):
    OPEN = "open"
    """Announced; the examiner's agent enrolls and scans."""
    RECORDED = "recorded"
    """The record is built and served for co-signing."""
    CLOSED = "closed"
    """The sign-off rule was met."""
    REFUSED = "refused"
    """A participant refused to sign, with reasons."""


class SessionOutcome(StrEnum):
    CLEAN = "clean"
    FINDINGS = "findings"


class OnSiteSession(Base):
    __tablename__ = "onsite_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    place: Mapped[str] = mapped_column(String(512))
    planned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    scope_ids: Mapped[list[int]] = mapped_column(JSON)
    sign_off: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    opened_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The record: the exact DSSE payload (an in-toto Statement) the participants sign.
    record: Mapped[bytes | None] = mapped_column(LargeBinary)
    record_digest: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Court-only attachment: the item lists that open the record's salted commitment.
    items: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    items_salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(check_in("state", SessionState), name="state"),
        CheckConstraint("outcome IS NULL OR " + check_in("outcome", SessionOutcome),
                        name="outcome"),
    )


class SessionParticipant(Base):
    """A case member listed for the session, with the role they hold in the case and when
    they were told (the hearing rule gives three days' notice)."""

    __tablename__ = "session_participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("onsite_sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(32))
    notified_at: Mapped[datetime] = mapped_column(UtcDateTime())
    refused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    refusal_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("session_id", "user_id"),)


class SessionSignature(Base):
    """A co-signature over the record: ``dsse`` (a signature of the record's envelope);
    ``webauthn`` will sit beside it."""

    __tablename__ = "session_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("onsite_sessions.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("session_participants.id"))
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    sig: Mapped[bytes] = mapped_column(LargeBinary)
    record_digest: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    # A key signs a record once; a participant signs it once (whatever key they use).
    __table_args__ = (UniqueConstraint("key_id", "session_id"),
                      UniqueConstraint("participant_id", "session_id"))
