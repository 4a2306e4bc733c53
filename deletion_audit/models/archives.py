"""A closed case's court bundle to archive: a due row written with the closure, exported
to a file by a job after the commit, so a crash between the two loses nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime


class CaseArchive(Base):
    __tablename__ = "case_archives"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # The closure's instant (domain clock): the job picks the row up from then on.
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Relative to the data directory.
    path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))


class CasePurge(Base):
    """A closed case whose own item rows, pseudonyms and salts the service deleted after
    the retention period; one per case (its primary key guards the purge)."""

    __tablename__ = "case_purges"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    purged_at: Mapped[datetime] = mapped_column(UtcDateTime())
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
