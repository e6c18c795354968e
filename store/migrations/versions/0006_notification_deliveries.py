"""Notification deliveries: each outbox row records how it went out.

A notice goes out on one channel (email, chat or pager), to recipients from the catalog,
through one sink (smtp, webhook, pagerduty, or the log when no sink is set). Temporal retries
a failing send; the row counts the attempts and keeps the last error.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("channel", sa.String(16), nullable=True))
        batch.add_column(sa.Column("page_action", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recipients", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sink", sa.String(16), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        for column in (
            "last_attempt_at",
            "last_error",
            "attempts",
            "sink",
            "recipients",
            "page_action",
            "channel",
        ):
            batch.drop_column(column)
