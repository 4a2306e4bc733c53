"""The transparency log: identity, leaves, stored subtree hashes, checkpoints, events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime


class LogIdentity(Base):
    """The installation's log: one row, written once by ``log init``."""

    __tablename__ = "log_identity"

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(255))
    log_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    service_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogState(Base):
    """The integrated tree's size and root: one row, locked by the integrator."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogLeaf(Base):
    """A leaf as written with its event; ``idx`` is set when the integrator sequences it."""

    __tablename__ = "log_leaves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    idx: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        # The integrator's queue: leaves not yet sequenced, in arrival order.
        Index("ix_log_leaves_pending", "id", postgresql_where=text("idx IS NULL"),
              sqlite_where=text("idx IS NULL")),
    )


class LogNode(Base):
    """The hash of every perfect subtree ``(level, idx)`` of the integrated tree.

    2n rows for n leaves; any proof or root reads O(log n) of them in one query, and level
    8·L rows are the hashes of C2SP tile level L.
    """

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(Base):
    """Every checkpoint the log signed, kept (a log never signs two inconsistent ones)."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Event(Base):
    """An event in full, with the salt that opens its restricted leaf.

    The leaf is public; this row is not. Court bundles carry the row, public bundles the
    leaf alone.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    leaf_hash: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("log_leaves.leaf_hash"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
