"""Key identity (issue 17 §4): a key's name is unique per role, and an Idempotency-Key claim
keeps what its first request made (a ticket's random id), so a retry answers with it.

Keys already sharing a role and a name keep the oldest's name; each later one gets its id
appended, so the upgrade never fails on an existing database.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE api_keys SET name = substr(name, 1, 83) || ' ' || id
        WHERE EXISTS (
            SELECT 1 FROM api_keys AS older
            WHERE older.role = api_keys.role AND older.name = api_keys.name
              AND (older.created_at < api_keys.created_at
                   OR (older.created_at = api_keys.created_at AND older.id < api_keys.id))
        )
        """
    )
    op.create_index("uq_api_keys_role_name", "api_keys", ["role", "name"], unique=True)
    op.add_column("idempotency_keys", sa.Column("resource_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("resource_id")
    op.drop_index("uq_api_keys_role_name", table_name="api_keys")
