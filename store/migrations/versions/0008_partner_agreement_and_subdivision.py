"""A partner's own 24/7 option with ConnectSoft, and a contract's ISO 3166-2 subdivision
(DESIGN.md §3, §6).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server default, so partners registered before this revision keep no 24/7 option.
    op.add_column(
        "partners",
        sa.Column("coverage_24x7", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # None: nationwide holidays only, as every contract had before.
    op.add_column("contracts", sa.Column("subdivision", sa.String(16), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("contracts") as contracts:
        contracts.drop_column("subdivision")
    with op.batch_alter_table("partners") as partners:
        partners.drop_column("coverage_24x7")
