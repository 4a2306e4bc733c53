"""whether a scan's last part carried an age summary: a scope under a retention rule
whose latest scan did not is unchecked, not kept

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Scans recorded before this revision count as without ages: the rule was not shown
    # kept by them (their envelopes still say, for anyone who re-checks).
    op.add_column("scan_records", sa.Column("ages_reported", sa.Boolean(), nullable=False,
                                            server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("scan_records", recreate="auto") as batch:
        batch.drop_column("ages_reported")
