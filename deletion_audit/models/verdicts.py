"""What accepted statements say about items, the cases waiting for a new verdict, and the
verdict versions.

``scan_records`` holds one row per scan (all its parts), ``scan_items`` the manifest digests
a scan found present, ``deletion_records`` one row per deletion statement and
``deleted_items`` its digests. The two item tables are bulk tables (a vendor's case reaches
26 million rows): like ``manifest_items`` they carry no foreign key, so ingest appends with
one multi-row insert per statement, and the verdict reads them with set-based SQL only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime


class ScanRecord(Base):
    """One scan of one scope by one agent: its parts' facts folded together."""

    __tablename__ = "scan_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    scan_id: Mapped[str] = mapped_column(String(256))
    # The challenge the scan answered (judged fresh at ingest); None: unchallenged.
    challenge_id: Mapped[int | None] = mapped_column(ForeignKey("challenges.id"))
    parts: Mapped[int] = mapped_column(Integer)
    # Set when the last part (with the totals) arrived.
    finished: Mapped[bool] = mapped_column(Boolean)
    coverage: Mapped[str | None] = mapped_column(String(16))
    objects: Mapped[int | None] = mapped_column(BigInteger)
    # The last part carried an age summary (a scope under a retention rule asks for one).
    ages_reported: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=false())
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("agent_id", "scan_id"),)


class ScanItem(Base):
    """A manifest item a scan found present (bulk: no foreign key)."""

    __tablename__ = "scan_items"

    scan_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)


class DeletionRecord(Base):
    """One accepted deletion statement."""

    __tablename__ = "deletion_records"

    attestation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("attestations.id"), primary_key=True, autoincrement=False)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    grade: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeletedItem(Base):
    """A digest a deletion statement says was removed (bulk: no foreign key)."""

    __tablename__ = "deleted_items"

    attestation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer)
    scope_id: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_deleted_items_case_digest", "case_id", "digest"),)


class VerdictMark(Base):
    """A case changed and waits for a new verdict. Appended (never updated) on the hot
    path, so concurrent statements of one case never wait for each other's row lock."""

    __tablename__ = "verdict_marks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    marked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Verdict(Base):
    """One version of a case's verdict: the full report and its service-signed statement."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    as_of_log_size: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime())
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    statement_id: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("case_id", "version"),)
