"""Major incidents in the read model (issue 19, DESIGN.md §12, §13): each incident's row, as its
workflow writes it when it opens and when it resolves, and its products, so the uptime report
counts an incident's outage for every customer with a ticket linked to it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
ENUM_VALUE = sa.String(32)


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", ENUM_VALUE, nullable=False),
        sa.Column("opened_at", timestamp(), nullable=False),
        sa.Column("resolved_at", timestamp(), nullable=True),
        sa.Column("outage_started_at", timestamp(), nullable=False),
        sa.Column("outage_ended_at", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("incident_id", name="pk_incidents"),
    )
    op.create_table(
        "incident_products",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("product", ENUM_VALUE, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident_id"],
            name="fk_incident_products_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "product", name="pk_incident_products"),
    )


def downgrade() -> None:
    op.drop_table("incident_products")
    op.drop_table("incidents")
