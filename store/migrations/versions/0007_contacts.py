"""Notification recipients: customers' and partners' contacts, and ConnectSoft's support teams.

A contact belongs to exactly one customer or partner and is notified (`notify`) or paged
(`on_call`, partners only). A support team row says where one of ConnectSoft's audiences
(support_l1 ... leadership_l4, support_lead, on_call) is reached: an address, a chat channel
and the zone to show due times in. Pager routing keys stay in the settings, never here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
ENUM_VALUE = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("partner_id", ID, nullable=True),
        sa.Column("role", ENUM_VALUE, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.CheckConstraint("(customer_id IS NULL) <> (partner_id IS NULL)", name="ck_contacts_one_owner"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_contacts_customer_id_customers"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_contacts_partner_id_partners"),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_index(
        "ix_contacts_customer_role_email", "contacts", ["customer_id", "role", "email"], unique=True
    )
    op.create_index(
        "ix_contacts_partner_role_email", "contacts", ["partner_id", "role", "email"], unique=True
    )
    op.create_table(
        "support_teams",
        sa.Column("audience", ENUM_VALUE, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("chat_channel", sa.String(81), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.PrimaryKeyConstraint("audience", name="pk_support_teams"),
    )


def downgrade() -> None:
    op.drop_table("support_teams")
    op.drop_index("ix_contacts_partner_role_email", table_name="contacts")
    op.drop_index("ix_contacts_customer_role_email", table_name="contacts")
    op.drop_table("contacts")
