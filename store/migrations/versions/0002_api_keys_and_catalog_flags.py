"""API keys (hashed), deactivated customers, and the partner's own breach flag on tickets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
ENUM_VALUE = sa.String(32)


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", ENUM_VALUE, nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("partner_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("revoked_at", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_api_keys_partner_id_partners"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_api_keys_customer_id_customers"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    # Server defaults, so rows written before this revision migrate in place.
    op.add_column(
        "tickets",
        sa.Column("partner_sla_breached", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "customers",
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("customers") as customers:
        customers.drop_column("active")
    with op.batch_alter_table("tickets") as tickets:
        tickets.drop_column("partner_sla_breached")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
