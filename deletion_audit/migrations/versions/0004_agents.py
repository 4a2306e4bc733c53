"""agents: enrollment, signed requests, challenges, attestations and refusals

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("party_role", sa.String(length=32), nullable=False),
        sa.Column("scope_ids", sa.JSON(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_enrollment_tokens_case_id_cases")),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"],
                                name=op.f("fk_enrollment_tokens_party_id_parties")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_enrollment_tokens_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_enrollment_tokens_secret_hash")),
    )
    op.create_index(op.f("ix_enrollment_tokens_case_id"), "enrollment_tokens", ["case_id"])
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("build_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("agent_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("enrolled_via", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("session_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_seconds", sa.Integer(),
                                      server_default=sa.text("300"), nullable=False))
        batch_op.add_column(sa.Column("last_seen_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_heartbeat", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("revoked_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("compromised_since", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_agents_enrolled_via_enrollment_tokens"),
                                    "enrollment_tokens", ["enrolled_via"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_agents_revoked_by_users"),
                                    "users", ["revoked_by"], ["id"])
    op.create_table(
        "request_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_request_nonces_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_nonces")),
        sa.UniqueConstraint("agent_id", "nonce", name=op.f("uq_request_nonces_agent_id")),
    )
    op.create_index(op.f("ix_request_nonces_created_at"), "request_nonces", ["created_at"])
    op.create_table(
        "challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("used_by_scan_id", sa.String(length=256), nullable=True),
        sa.Column("judged_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("origin IN ('prosecutor', 'review', 'session', 'agent')",
                           name=op.f("ck_challenges_origin")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_challenges_case_id_cases")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_challenges_agent_id_agents")),
        sa.ForeignKeyConstraint(["scope_id"], ["scopes.id"],
                                name=op.f("fk_challenges_scope_id_scopes")),
        sa.ForeignKeyConstraint(["issued_by"], ["users.id"],
                                name=op.f("fk_challenges_issued_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
        sa.UniqueConstraint("nonce", name=op.f("uq_challenges_nonce")),
    )
    op.create_index(op.f("ix_challenges_agent_id"), "challenges", ["agent_id"])
    op.create_table(
        "attestations",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=True),
        sa.Column("predicate_type", sa.String(length=128), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=True),
        sa.Column("scan_id", sa.String(length=256), nullable=True),
        sa.Column("part", sa.Integer(), nullable=True),
        sa.Column("challenge_id", sa.Integer(), nullable=True),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_attestations_agent_id_agents")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_attestations_case_id_cases")),
        sa.ForeignKeyConstraint(["scope_id"], ["scopes.id"],
                                name=op.f("fk_attestations_scope_id_scopes")),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"],
                                name=op.f("fk_attestations_challenge_id_challenges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attestations")),
        sa.UniqueConstraint("statement_id", name=op.f("uq_attestations_statement_id")),
        sa.UniqueConstraint("agent_id", "seq", name=op.f("uq_attestations_agent_id")),
    )
    op.create_index(op.f("ix_attestations_case_id"), "attestations", ["case_id"])
    op.create_index(op.f("ix_attestations_scope_id"), "attestations", ["scope_id"])
    op.create_table(
        "refusals",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"],
                                name=op.f("fk_refusals_agent_id_agents")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_refusals_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusals")),
        sa.UniqueConstraint("agent_id", "statement_id", name=op.f("uq_refusals_agent_id")),
    )
    op.create_index(op.f("ix_refusals_case_id"), "refusals", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refusals_case_id"), table_name="refusals")
    op.drop_table("refusals")
    op.drop_index(op.f("ix_attestations_scope_id"), table_name="attestations")
    op.drop_index(op.f("ix_attestations_case_id"), table_name="attestations")
    op.drop_table("attestations")
    op.drop_index(op.f("ix_challenges_agent_id"), table_name="challenges")
    op.drop_table("challenges")
    op.drop_index(op.f("ix_request_nonces_created_at"), table_name="request_nonces")
    op.drop_table("request_nonces")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_agents_revoked_by_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_agents_enrolled_via_enrollment_tokens"),
                                 type_="foreignkey")
        for column in ("revocation_reason", "compromised_since", "revoked_by", "revoked_at",
                       "last_heartbeat", "last_seen_at", "heartbeat_seconds", "session_id",
                       "enrolled_via", "agent_version", "build_digest", "host"):
            batch_op.drop_column(column)
    op.drop_index(op.f("ix_enrollment_tokens_case_id"), table_name="enrollment_tokens")
    op.drop_table("enrollment_tokens")
