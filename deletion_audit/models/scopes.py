"""Where data may live (scopes), where copies may have gone (data flows), and which agents
look at each scope (bindings)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class ScopeKind(StrEnum):
    DIRECTORY = "directory"
    SQL = "sql"
    OBJECT_STORE = "object_store"
    SEALED_CONTAINER = "sealed_container"


class DataFlowKind(StrEnum):
    VENDOR = "vendor"
    CLOUD_UPLOAD = "cloud_upload"
    BACKUP = "backup"


class Scope(Base):
    __tablename__ = "scopes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # SHA-256 of JCS(spec): every scan names the specification it obeyed by this digest.
    spec_digest: Mapped[str] = mapped_column(String(64))
    expects_data: Mapped[bool] = mapped_column(Boolean)
    location_codes: Mapped[list[str]] = mapped_column(JSON)
    timestamp_field: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        UniqueConstraint("case_id", "name"),
        CheckConstraint(check_in("kind", ScopeKind), name="kind"),
    )


class DataFlow(Base):
    """A place copies may have gone; covered by a scope or by a vendor party's statement."""

    __tablename__ = "data_flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(512))
    destination: Mapped[str] = mapped_column(String(512))
    scope_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"))
    vendor_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (CheckConstraint(check_in("kind", DataFlowKind), name="kind"),)


class Binding(Base):
    """Scope ↔ agent. Several agents per scope (the company's, the examiner's); an unbound
    binding is kept, because the verdict reads what was bound when."""

    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # None when the binding came through an enrollment token rather than a person.
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unbound_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    unbound_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        # At most one live binding per (scope, agent); history rows are unbound.
        Index("uq_bindings_live", "scope_id", "agent_id", unique=True,
              postgresql_where=text("unbound_at IS NULL"),
              sqlite_where=text("unbound_at IS NULL")),
    )
