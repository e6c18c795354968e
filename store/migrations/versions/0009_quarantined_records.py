"""Quarantined records: a read-model write the database refused on its data is kept here with
its error, rather than retried for ever (issue 17 §1).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("error_kind", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantined_records"),
    )
    op.create_index("ix_quarantined_records_ticket_id", "quarantined_records", ["ticket_id"])
    op.create_index(
        "ix_quarantined_records_run_activity", "quarantined_records", ["run_id", "activity_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_quarantined_records_run_activity", table_name="quarantined_records")
    op.drop_index("ix_quarantined_records_ticket_id", table_name="quarantined_records")
    op.drop_table("quarantined_records")
