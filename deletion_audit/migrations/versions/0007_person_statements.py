"""people's statements: attestations and refusals signed by a person's registered key, and
what each accepted one concerns (a data flow or an obligation)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from deletion_audit.models.base import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ONE_SIGNER = "(agent_id IS NULL) <> (user_id IS NULL)"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("user_key_id", sa.Integer(), nullable=True))
        batch_op.alter_column("agent_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_attestations_user_id_users"), "users",
                                    ["user_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_attestations_user_key_id_user_keys"),
                                    "user_keys", ["user_key_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_attestations_user_id"), ["user_id"])
        batch_op.create_check_constraint(batch_op.f("ck_attestations_one_signer"),
                                         _ONE_SIGNER)
        batch_op.create_check_constraint(batch_op.f("ck_attestations_agent_seq"),
                                         "agent_id IS NULL OR seq IS NOT NULL")
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.alter_column("agent_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_refusals_user_id_users"), "users",
                                    ["user_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_refusals_user_id"), ["user_id"])
        batch_op.create_unique_constraint(batch_op.f("uq_refusals_user_id"),
                                          ["user_id", "statement_id"])
        batch_op.create_check_constraint(batch_op.f("ck_refusals_one_signer"), _ONE_SIGNER)
    op.create_table(
        "person_statements",
        sa.Column("attestation_id", _BIG_ID, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("predicate_type", sa.String(length=128), nullable=False),
        sa.Column("data_flow_id", sa.Integer(), nullable=True),
        sa.Column("obligation_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("stated_at", UtcDateTime(), nullable=False),
        _fk("person_statements", "attestation_id", "attestations"),
        _fk("person_statements", "case_id", "cases"),
        _fk("person_statements", "user_id", "users"),
        _fk("person_statements", "party_id", "parties"),
        _fk("person_statements", "data_flow_id", "data_flows"),
        _fk("person_statements", "obligation_id", "obligations"),
        sa.PrimaryKeyConstraint("attestation_id", name=op.f("pk_person_statements")),
    )
    for column in ("case_id", "data_flow_id", "obligation_id"):
        op.create_index(op.f(f"ix_person_statements_{column}"), "person_statements", [column])


def downgrade() -> None:
    for column in ("obligation_id", "data_flow_id", "case_id"):
        op.drop_index(op.f(f"ix_person_statements_{column}"), table_name="person_statements")
    op.drop_table("person_statements")
    # People's rows cannot live in the older schema (no agent, no seq).
    op.execute("DELETE FROM refusals WHERE user_id IS NOT NULL")
    op.execute("DELETE FROM attestations WHERE user_id IS NOT NULL")
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_refusals_one_signer"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_refusals_user_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_refusals_user_id"))
        batch_op.drop_constraint(batch_op.f("fk_refusals_user_id_users"), type_="foreignkey")
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("agent_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("user_id")
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_attestations_agent_seq"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_attestations_one_signer"), type_="check")
        batch_op.drop_index(batch_op.f("ix_attestations_user_id"))
        batch_op.drop_constraint(batch_op.f("fk_attestations_user_key_id_user_keys"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_attestations_user_id_users"),
                                 type_="foreignkey")
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("agent_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("user_key_id")
        batch_op.drop_column("user_id")
