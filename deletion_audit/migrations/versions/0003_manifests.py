"""evidence manifests

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "manifests",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("case_number", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("file_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("header", sa.JSON(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("statement_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("examiner_key_id", sa.String(length=64), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("subjects", sa.BigInteger(), nullable=False),
        sa.Column("registered_by", sa.Integer(), nullable=True),
        sa.Column("supersedes_id", _BIG_ID, nullable=True),
        sa.Column("superseded_reason", sa.Text(), nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("touched_at", UtcDateTime(), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_manifests_case_id_cases")),
        sa.ForeignKeyConstraint(["registered_by"], ["users.id"],
                                name=op.f("fk_manifests_registered_by_users")),
        sa.ForeignKeyConstraint(["supersedes_id"], ["manifests.id"],
                                name=op.f("fk_manifests_supersedes_id_manifests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifests")),
    )
    op.create_index(op.f("ix_manifests_case_id"), "manifests", ["case_id"])
    op.create_table(
        "manifest_items",
        sa.Column("manifest_id", sa.BigInteger(), nullable=False),
        sa.Column("ordinal", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.LargeBinary(length=32), nullable=True),
        sa.Column("source", sa.String(length=128), nullable=True),
        sa.Column("pdq", sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint("manifest_id", "ordinal", name=op.f("pk_manifest_items")),
    )
    op.create_index("ix_manifest_items_digest", "manifest_items", ["manifest_id", "digest"],
                    unique=True)
    op.create_table(
        "manifest_nodes",
        sa.Column("manifest_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", "level", "idx", name=op.f("pk_manifest_nodes")),
    )
    op.create_table(
        "manifest_filters",
        sa.Column("manifest_id", sa.BigInteger(), nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", "chunk", name=op.f("pk_manifest_filters")),
    )
    op.create_table(
        "manifest_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("manifest_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("touched_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_manifest_uploads_case_id_cases")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_manifest_uploads_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_uploads")),
    )
    op.create_index(op.f("ix_manifest_uploads_case_id"), "manifest_uploads", ["case_id"])


def downgrade() -> None:
    op.drop_table("manifest_uploads")
    op.drop_table("manifest_filters")
    op.drop_table("manifest_nodes")
    op.drop_index("ix_manifest_items_digest", table_name="manifest_items")
    op.drop_table("manifest_items")
    op.drop_index(op.f("ix_manifests_case_id"), table_name="manifests")
    op.drop_table("manifests")
