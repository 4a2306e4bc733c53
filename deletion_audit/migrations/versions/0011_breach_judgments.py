"""judgments of breached obligations (a retention rule a scan broke, a sealed container
whose digest changed); scopes of kind sealed_container

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BEFORE = ("late", "dark", "overdue")
_AFTER = (*_BEFORE, "breached")


def _finding_in(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("judgments", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_judgments_finding"), type_="check")
        batch.create_check_constraint(
            op.f("ck_judgments_finding"),
            f"finding IN ({', '.join(repr(v) for v in values)})")


_KINDS = ("directory", "sql", "object_store")


def _scope_kind_in(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("scopes", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_scopes_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_scopes_kind"), f"kind IN ({', '.join(repr(v) for v in values)})")


def upgrade() -> None:
    _finding_in(_AFTER)
    _scope_kind_in((*_KINDS, "sealed_container"))


def downgrade() -> None:
    op.execute("DELETE FROM escalations WHERE judgment_id IN "
               "(SELECT id FROM judgments WHERE finding = 'breached')")
    op.execute("DELETE FROM judgments WHERE finding = 'breached'")
    _finding_in(_BEFORE)
    _scope_kind_in(_KINDS)
