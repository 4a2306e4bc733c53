"""Obligations of a case and the documents submitted for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class ObligationKind(StrEnum):
    DELETE_MANIFEST = "delete-manifest"
    CUSTODY_UNTIL = "custody-until"
    RETENTION = "retention"
    DEIDENTIFY = "deidentify"
    DOCUMENT = "document"


class ObligationState(StrEnum):
    """Every state any kind can be in; which ones a kind uses is in cases/obligations.py."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_FORCE = "in_force"
    BREACHED = "breached"
    DISCHARGED = "discharged"
    WAIVED = "waived"


class DocumentState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Obligation(Base):
    __tablename__ = "obligations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    # The deadline is a rule (cases/deadlines.py); the due instant is derived from it and
    # kept here so the scheduler can find what is due with an index.
    deadline: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    due_provisional: Mapped[bool] = mapped_column(Boolean)
    waiver_reason: Mapped[str | None] = mapped_column(Text)
    waived_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    waived_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint(check_in("kind", ObligationKind), name="kind"),
        CheckConstraint(check_in("state", ObligationState), name="state"),
    )


class DocumentContent(Base):
    """Submitted file bytes, kept once per digest, in the same transaction as the
    submission (a file in the data directory could outlive a rolled-back request)."""

    __tablename__ = "document_contents"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    digest: Mapped[str] = mapped_column(ForeignKey("document_contents.digest"))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint(check_in("state", DocumentState), name="state"),)
