"""on-site sessions: participants, the record they sign, co-signatures; a challenge's session

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "onsite_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=512), nullable=False),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("scope_ids", sa.JSON(), nullable=False),
        sa.Column("sign_off", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("opened_by", sa.Integer(), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=True),
        sa.Column("record_digest", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", UtcDateTime(), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("items", sa.JSON(), nullable=True),
        sa.Column("items_salt", sa.LargeBinary(length=32), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'recorded', 'closed', 'refused')",
                           name=op.f("ck_onsite_sessions_state")),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('clean', 'findings')",
                           name=op.f("ck_onsite_sessions_outcome")),
        _fk("onsite_sessions", "case_id", "cases"),
        _fk("onsite_sessions", "opened_by", "users"),
        _fk("onsite_sessions", "recorded_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onsite_sessions")),
    )
    op.create_index(op.f("ix_onsite_sessions_case_id"), "onsite_sessions", ["case_id"])
    op.create_table(
        "session_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("notified_at", UtcDateTime(), nullable=False),
        sa.Column("refused_at", UtcDateTime(), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        _fk("session_participants", "session_id", "onsite_sessions"),
        _fk("session_participants", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_participants")),
        sa.UniqueConstraint("session_id", "user_id",
                            name=op.f("uq_session_participants_session_id")),
    )
    op.create_index(op.f("ix_session_participants_session_id"), "session_participants",
                    ["session_id"])
    op.create_table(
        "session_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sig", sa.LargeBinary(), nullable=False),
        sa.Column("record_digest", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UtcDateTime(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        _fk("session_signatures", "session_id", "onsite_sessions"),
        _fk("session_signatures", "participant_id", "session_participants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_signatures")),
        sa.UniqueConstraint("key_id", "session_id",
                            name=op.f("uq_session_signatures_key_id")),
        sa.UniqueConstraint("participant_id", "session_id",
                            name=op.f("uq_session_signatures_participant_id")),
    )
    op.create_index(op.f("ix_session_signatures_session_id"), "session_signatures",
                    ["session_id"])
    with op.batch_alter_table("challenges") as batch:
        batch.add_column(sa.Column("session_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("challenges") as batch:
        batch.drop_column("session_id")
    op.drop_index(op.f("ix_session_signatures_session_id"), table_name="session_signatures")
    op.drop_table("session_signatures")
    op.drop_index(op.f("ix_session_participants_session_id"), table_name="session_participants")
    op.drop_table("session_participants")
    op.drop_index(op.f("ix_onsite_sessions_case_id"), table_name="onsite_sessions")
    op.drop_table("onsite_sessions")
