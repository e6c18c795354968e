"""Initial schema: catalog, ticket read model, notification outbox.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
ENUM_VALUE = sa.String(32)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_table(
        "partners",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("connectsoft_tier", ENUM_VALUE, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
    )
    op.create_table(
        "contracts",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("tier", ENUM_VALUE, nullable=False),
        sa.Column("product_type", ENUM_VALUE, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("country", sa.String(8), nullable=True),
        sa.Column("coverage_24x7", sa.Boolean(), nullable=False),
        sa.Column("partner_id", ID, nullable=True),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("overrides", JSON_DOCUMENT, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_contracts_customer_id_customers"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_contracts_partner_id_partners"),
        sa.PrimaryKeyConstraint("id", name="pk_contracts"),
    )
    op.create_index(
        "ix_contracts_one_active_per_customer",
        "contracts",
        ["customer_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "tickets",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("workflow_id", sa.String(250), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("partner_id", ID, nullable=True),
        sa.Column("contract_id", ID, nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("product", ENUM_VALUE, nullable=False),
        sa.Column("product_type", ENUM_VALUE, nullable=False),
        sa.Column("tier", ENUM_VALUE, nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", ENUM_VALUE, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("owning_line", ENUM_VALUE, nullable=False),
        sa.Column("received_at", timestamp(), nullable=False),
        sa.Column("response_due", timestamp(), nullable=True),
        sa.Column("sla_breached", sa.Boolean(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_tickets"),
    )
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])
    op.create_index("ix_tickets_status", "tickets", ["status"])
    op.create_index("ix_tickets_tier", "tickets", ["tier"])
    op.create_table(
        "ticket_events",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("detail", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.ticket_id"],
            name="fk_ticket_events_ticket_id_tickets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name="pk_ticket_events"),
    )
    op.create_table(
        "notifications",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("audience", ENUM_VALUE, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("page", sa.Boolean(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("delivered_at", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", "key", name="pk_notifications"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("ticket_events")
    op.drop_index("ix_tickets_tier", table_name="tickets")
    op.drop_index("ix_tickets_status", table_name="tickets")
    op.drop_index("ix_tickets_customer_id", table_name="tickets")
    op.drop_table("tickets")
    op.drop_index("ix_contracts_one_active_per_customer", table_name="contracts")
    op.drop_table("contracts")
    op.drop_table("partners")
    op.drop_table("customers")
