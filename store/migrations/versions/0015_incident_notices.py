"""Incident notices (issue 19): a linked ticket's notices name their incident, and go out to
ConnectSoft's own audiences in one digest per (incident, audience) per window and one page per
incident. Every notice keeps its own outbox row; `group_key` names the digest or page it went
out in.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("incident_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("event_kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("clock_kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("group_key", sa.String(200), nullable=True))
    op.create_index("ix_notifications_group_key", "notifications", ["group_key"])
    op.create_index("ix_notifications_incident_id_audience", "notifications", ["incident_id", "audience"])
    op.create_table(
        "incident_digests",
        sa.Column("incident_id", sa.String(200), nullable=False),
        sa.Column("audience", sa.String(32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_key", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sink", sa.String(16), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("incident_id", "audience", "window_start", name="pk_incident_digests"),
        sa.UniqueConstraint("digest_key", name="uq_incident_digests_digest_key"),
    )
    op.create_table(
        "incident_pages",
        sa.Column("incident_id", sa.String(200), nullable=False),
        sa.Column("audience", sa.String(32), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger_key", sa.String(200), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "audience", name="pk_incident_pages"),
    )


def downgrade() -> None:
    op.drop_table("incident_pages")
    op.drop_table("incident_digests")
    op.drop_index("ix_notifications_incident_id_audience", "notifications")
    op.drop_index("ix_notifications_group_key", "notifications")
    with op.batch_alter_table("notifications") as batch:
        for column in ("group_key", "clock_kind", "event_kind", "incident_id"):
            batch.drop_column(column)
