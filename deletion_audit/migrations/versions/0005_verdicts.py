"""verdicts: what statements say about items, cases waiting for a verdict, verdict versions

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "scan_records",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.String(length=256), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("coverage", sa.String(length=16), nullable=True),
        sa.Column("objects", sa.BigInteger(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        _fk("scan_records", "case_id", "cases"),
        _fk("scan_records", "scope_id", "scopes"),
        _fk("scan_records", "agent_id", "agents"),
        _fk("scan_records", "challenge_id", "challenges"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_records")),
        sa.UniqueConstraint("agent_id", "scan_id", name=op.f("uq_scan_records_agent_id")),
    )
    op.create_index(op.f("ix_scan_records_case_id"), "scan_records", ["case_id"])
    op.create_index(op.f("ix_scan_records_scope_id"), "scan_records", ["scope_id"])
    op.create_table(
        "scan_items",
        sa.Column("scan_pk", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("scan_pk", "digest", name=op.f("pk_scan_items")),
    )
    op.create_table(
        "deletion_records",
        sa.Column("attestation_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=False),
        _fk("deletion_records", "attestation_id", "attestations"),
        _fk("deletion_records", "case_id", "cases"),
        _fk("deletion_records", "scope_id", "scopes"),
        _fk("deletion_records", "agent_id", "agents"),
        sa.PrimaryKeyConstraint("attestation_id", name=op.f("pk_deletion_records")),
    )
    op.create_index(op.f("ix_deletion_records_case_id"), "deletion_records", ["case_id"])
    op.create_index(op.f("ix_deletion_records_scope_id"), "deletion_records", ["scope_id"])
    op.create_table(
        "deleted_items",
        sa.Column("attestation_id", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("attestation_id", "digest", name=op.f("pk_deleted_items")),
    )
    op.create_index("ix_deleted_items_case_digest", "deleted_items", ["case_id", "digest"])
    op.create_table(
        "verdict_marks",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("marked_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdict_marks")),
    )
    op.create_index(op.f("ix_verdict_marks_case_id"), "verdict_marks", ["case_id"])
    op.create_table(
        "verdicts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("as_of_log_size", sa.BigInteger(), nullable=False),
        sa.Column("as_of", UtcDateTime(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        _fk("verdicts", "case_id", "cases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
        sa.UniqueConstraint("case_id", "version", name=op.f("uq_verdicts_case_id")),
    )


def downgrade() -> None:
    op.drop_table("verdicts")
    op.drop_index(op.f("ix_verdict_marks_case_id"), table_name="verdict_marks")
    op.drop_table("verdict_marks")
    op.drop_index("ix_deleted_items_case_digest", table_name="deleted_items")
    op.drop_table("deleted_items")
    op.drop_index(op.f("ix_deletion_records_scope_id"), table_name="deletion_records")
    op.drop_index(op.f("ix_deletion_records_case_id"), table_name="deletion_records")
    op.drop_table("deletion_records")
    op.drop_table("scan_items")
    op.drop_index(op.f("ix_scan_records_scope_id"), table_name="scan_records")
    op.drop_index(op.f("ix_scan_records_case_id"), table_name="scan_records")
    op.drop_table("scan_records")
