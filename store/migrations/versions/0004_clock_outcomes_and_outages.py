"""Per-clock outcomes, ticket facts for MTTA/MTTR, and outages, for the reports (DESIGN.md §12).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
ENUM_VALUE = sa.String(32)
FACT_COLUMNS = ("acknowledged_at", "resolved_at", "waiting_seconds", "outage_started_at", "outage_ended_at")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ticket_clocks",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("clock_no", sa.Integer(), nullable=False),
        sa.Column("kind", ENUM_VALUE, nullable=False),
        sa.Column("line", ENUM_VALUE, nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("calendar", ENUM_VALUE, nullable=False),
        sa.Column("binding", sa.Boolean(), nullable=False),
        sa.Column("started_at", timestamp(), nullable=False),
        sa.Column("due_at", timestamp(), nullable=False),
        sa.Column("stopped_at", timestamp(), nullable=True),
        sa.Column("status", ENUM_VALUE, nullable=False),
        sa.Column("paused_seconds", sa.Double(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.ticket_id"],
            name="fk_ticket_clocks_ticket_id_tickets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "clock_no", name="pk_ticket_clocks"),
    )
    op.create_index("ix_ticket_clocks_kind_status", "ticket_clocks", ["kind", "status"])
    # A server default, so rows written before this revision migrate in place.
    op.add_column("tickets", sa.Column("acknowledged_at", timestamp(), nullable=True))
    op.add_column("tickets", sa.Column("resolved_at", timestamp(), nullable=True))
    op.add_column(
        "tickets", sa.Column("waiting_seconds", sa.Double(), nullable=False, server_default=sa.text("0"))
    )
    op.add_column("tickets", sa.Column("outage_started_at", timestamp(), nullable=True))
    op.add_column("tickets", sa.Column("outage_ended_at", timestamp(), nullable=True))
    op.create_index("ix_tickets_received_at", "tickets", ["received_at"])
    op.create_index("ix_tickets_outage_started_at", "tickets", ["outage_started_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_outage_started_at", table_name="tickets")
    op.drop_index("ix_tickets_received_at", table_name="tickets")
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("tickets") as tickets:
        for column in FACT_COLUMNS:
            tickets.drop_column(column)
    op.drop_index("ix_ticket_clocks_kind_status", table_name="ticket_clocks")
    op.drop_table("ticket_clocks")
