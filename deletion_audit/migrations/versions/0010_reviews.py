"""follow-up reviews: each case's review plan and its reviews

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "review_plans",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("offsets_days", sa.JSON(), nullable=False),
        sa.Column("unannounced_count", sa.Integer(), nullable=False),
        sa.Column("window_from_days", sa.Integer(), nullable=False),
        sa.Column("window_to_days", sa.Integer(), nullable=False),
        sa.Column("response_hours", sa.Integer(), nullable=False),
        sa.Column("anchored_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        _fk("review_plans", "case_id", "cases"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_review_plans")),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=True),
        sa.Column("response_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("opened_at", UtcDateTime(), nullable=True),
        sa.Column("closes_at", UtcDateTime(), nullable=True),
        sa.Column("challenge_ids", sa.JSON(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("statement_id", sa.String(length=64), nullable=True),
        sa.Column("envelope", sa.LargeBinary(), nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=True),
        sa.CheckConstraint(_in("kind", ("announced", "unannounced", "on_demand")),
                           name=op.f("ck_reviews_kind")),
        sa.CheckConstraint(_in("state", ("planned", "open", "closed", "cancelled")),
                           name=op.f("ck_reviews_state")),
        sa.CheckConstraint("outcome IS NULL OR "
                           + _in("outcome", ("clean", "findings", "no_response")),
                           name=op.f("ck_reviews_outcome")),
        _fk("reviews", "case_id", "cases"),
        _fk("reviews", "created_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(op.f("ix_reviews_case_id"), "reviews", ["case_id"])
    op.create_index(op.f("ix_reviews_state"), "reviews", ["state"])
    op.create_index(op.f("ix_reviews_due_at"), "reviews", ["due_at"])
    op.create_index(op.f("ix_reviews_closes_at"), "reviews", ["closes_at"])


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("review_plans")
