"""What-if's record in the read model: each ticket's pinned opening and the actions its workflow
applied, with their bodies and times, so `escalator whatif` replays tickets without reading
their Temporal histories (issue 20).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ticket_openings",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("opened", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_ticket_openings"),
    )
    op.create_table(
        "ticket_actions",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update", sa.String(64), nullable=False),
        sa.Column("signal", sa.Boolean(), nullable=False),
        sa.Column("body", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name="pk_ticket_actions"),
    )


def downgrade() -> None:
    op.drop_table("ticket_actions")
    op.drop_table("ticket_openings")
