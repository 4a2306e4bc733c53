"""the scheduler: the leader's lease, the service's judgments and their escalation steps,
notification recipients and the outbox

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _check_in(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})",
                              name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "judgments",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("finding", sa.String(length=16), nullable=False),
        sa.Column("episode", sa.String(length=256), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("obligation_id", sa.Integer(), nullable=True),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.Column("judged_at", UtcDateTime(), nullable=False),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        _check_in("judgments", "finding", ("late", "dark", "overdue")),
        _fk("judgments", "case_id", "cases"),
        _fk("judgments", "agent_id", "agents"),
        _fk("judgments", "obligation_id", "obligations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judgments")),
        sa.UniqueConstraint("episode", name=op.f("uq_judgments_episode")),
    )
    op.create_index(op.f("ix_judgments_case_id"), "judgments", ["case_id"])
    op.create_index(op.f("ix_judgments_agent_id"), "judgments", ["agent_id"])
    op.create_index(op.f("ix_judgments_obligation_id"), "judgments", ["obligation_id"])
    op.create_table(
        "escalations",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("judgment_id", _BIG_ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("done_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        _fk("escalations", "judgment_id", "judgments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_judgment_id"), "escalations", ["judgment_id"])
    op.create_index(op.f("ix_escalations_due_at"), "escalations", ["due_at"])
    op.create_table(
        "notification_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("after_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _check_in("notification_recipients", "channel", ("email", "webhook")),
        _fk("notification_recipients", "case_id", "cases"),
        _fk("notification_recipients", "created_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_recipients")),
    )
    op.create_index(op.f("ix_notification_recipients_case_id"), "notification_recipients",
                    ["case_id"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _check_in("notification_outbox", "channel", ("email", "webhook")),
        _fk("notification_outbox", "case_id", "cases"),
        _fk("notification_outbox", "recipient_id", "notification_recipients"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_notification_outbox_message_id")),
    )
    op.create_index(op.f("ix_notification_outbox_case_id"), "notification_outbox", ["case_id"])
    op.create_index(op.f("ix_notification_outbox_next_attempt_at"), "notification_outbox",
                    ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notification_outbox")
    op.drop_table("notification_recipients")
    op.drop_table("escalations")
    op.drop_table("judgments")
    op.drop_table("scheduler_leases")
