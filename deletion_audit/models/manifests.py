"""Evidence manifests: the signed list of item digests every deletion is checked against.

The item and node tables are bulk tables (26 million rows for one vendor): they carry no
foreign key — a per-row check would dominate a COPY — and are removed explicitly with their
manifest. Nothing of a manifest is visible until its state is ``active``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, BigId, UtcDateTime

# Item kinds as stored (a small integer per row keeps 26 M rows compact).
KIND_CODES: dict[str, int] = {"image": 1, "video": 2, "record": 3, "document": 4, "other": 5}
KIND_NAMES: dict[int, str] = {v: k for k, v in KIND_CODES.items()}


class Manifest(Base):
    __tablename__ = "manifests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # importing → active → superseded; importing → (removed) when it fails or is abandoned.
    state: Mapped[str] = mapped_column(String(16))
    case_number: Mapped[str] = mapped_column(String(128))
    count: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    file_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    header: Mapped[dict[str, Any]] = mapped_column(JSON)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)  # as received, whole
    statement_id: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the payload
    examiner_key_id: Mapped[str] = mapped_column(String(64))
    kinds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    subjects: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("manifests.id"))
    superseded_reason: Mapped[str | None] = mapped_column(Text)
    leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Touched by every batch of an import; an import silent for long is abandoned.
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ManifestItem(Base):
    """One manifest entry; ``ordinal`` is its position, hence its leaf index."""

    __tablename__ = "manifest_items"

    manifest_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ordinal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[int] = mapped_column(SmallInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    source: Mapped[str | None] = mapped_column(String(128))
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("ix_manifest_items_digest", "manifest_id", "digest", unique=True),
    )


class ManifestNode(Base):
    """Subtree hashes of the manifest tree at levels >= 8 (one row per 256 leaves and up).

    Lower levels are recomputed from the 256 item rows of one block, so a proof reads one
    range of items and a few nodes, and the table stays 1/128 the size of the items.
    """

    __tablename__ = "manifest_nodes"

    manifest_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ManifestFilter(Base):
    """The manifest's Bloom filter (core.bloom file format) in order: chunk 0 is the header,
    then pieces of at most 4 MiB, so neither the import nor a download holds it twice."""

    __tablename__ = "manifest_filters"

    manifest_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ManifestUpload(Base):
    """A resumable upload: chunks appended in order to a file in the data directory."""

    __tablename__ = "manifest_uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set once completed: a repeated ``complete`` (a lost response) is told which manifest.
    manifest_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime())
