"""A case, its parties (organisations with a role) and its members (people in a party)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class CaseStatus(StrEnum):
    OPEN = "open"
    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    MONITORING = "monitoring"
    CLOSED = "closed"


class PartyRole(StrEnum):
    PROCURATORATE = "procuratorate"
    RESPONDENT = "respondent"
    VENDOR = "vendor"
    CUSTODIAN = "custodian"
    FORENSIC_LAB = "forensic_lab"
    REGULATOR = "regulator"
    WITNESS_BODY = "witness_body"


class CaseRole(StrEnum):
    PROSECUTOR = "prosecutor"
    EXAMINER = "examiner"
    COMPANY_OFFICER = "company_officer"
    WITNESS = "witness"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 案号 are unique per procuratorate, not globally.
    procuratorate_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    case_number: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("procuratorate_id", "case_number"),
        CheckConstraint(check_in("status", CaseStatus), name="status"),
    )


class Party(Base):
    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("case_id", "organisation_id"),
        CheckConstraint(check_in("role", PartyRole), name="role"),
    )


class Membership(Base):
    """One person, one party, one role per case: the permission table is keyed by it."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("case_id", "user_id"),
        # "the cases I am a member of", in case order (GET /cases).
        Index("ix_memberships_user_case", "user_id", "case_id"),
        CheckConstraint(check_in("role", CaseRole), name="role"),
    )
