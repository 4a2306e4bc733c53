"""closing a case: its court bundle's archive, due with the closure, and its data's purge
after the retention period

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_archives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", UtcDateTime(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_case_archives_case_id_cases")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"],
                                name=op.f("fk_case_archives_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_archives")),
    )
    op.create_index(op.f("ix_case_archives_case_id"), "case_archives", ["case_id"])
    op.create_index(op.f("ix_case_archives_due_at"), "case_archives", ["due_at"])
    op.create_table(
        "case_purges",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=False),
        sa.Column("purged_at", UtcDateTime(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_case_purges_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_purges")),
    )


def downgrade() -> None:
    op.drop_table("case_purges")
    op.drop_table("case_archives")
