"""Per-ticket report rollups: each line's response outcomes and the escalations, so the reports
scan tickets once instead of joining 100,000 tickets to their clocks and events.

They are a projection of ticket_clocks and ticket_events, recounted by the sync in the same
transaction (store/clock_outcomes.py). Escalations already recorded are counted here;
tickets synced before 0004 have no clock rows, so their response counts start at 0.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = (
    "partner_response_clocks",
    "partner_responses_met",
    "partner_responses_breached",
    "connectsoft_response_clocks",
    "connectsoft_responses_met",
    "connectsoft_responses_breached",
    "escalations_l2",
    "escalations_l3",
    "escalations_l4",
)


def upgrade() -> None:
    for column in ROLLUPS:
        op.add_column("tickets", sa.Column(column, sa.Integer(), nullable=False, server_default=sa.text("0")))
    # The reports read the rollups; the clock rows are read per ticket, by primary key.
    op.drop_index("ix_ticket_clocks_kind_status", table_name="ticket_clocks")
    is_partner_notice = (
        "json_extract(detail, '$.line') = 'partner'"
        if op.get_bind().dialect.name == "sqlite"
        else "detail ->> 'line' = 'partner'"
    )
    for level in (2, 3, 4):
        op.execute(
            f"UPDATE tickets SET escalations_l{level} = (SELECT count(*) FROM ticket_events e "
            f"WHERE e.ticket_id = tickets.ticket_id AND e.level = {level} AND (e.kind = 'escalated' "
            f"OR (e.kind = 'critical_incident' AND NOT coalesce({is_partner_notice}, false))))"
        )


def downgrade() -> None:
    op.create_index("ix_ticket_clocks_kind_status", "ticket_clocks", ["kind", "status"])
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("tickets") as tickets:
        for column in ROLLUPS:
            tickets.drop_column(column)
