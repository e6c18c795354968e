"""A ticket's major incident (issue 19, DESIGN.md §13): the read model knows which tickets an
incident links, so its fan-out pages through them and its counts read them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("incident_id", sa.String(length=200), nullable=True))
    op.create_index("ix_tickets_incident_id", "tickets", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_incident_id", table_name="tickets")
    # In place (SQLite 3.35 or newer), as 0013 does: batch mode would copy and drop `tickets`,
    # and the drop would cascade to the tickets' events and clocks.
    op.drop_column("tickets", "incident_id")
