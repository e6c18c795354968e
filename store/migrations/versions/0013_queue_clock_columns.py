"""The clock the console's queue counts down, on the ticket's row, so the queue orders in SQL
alone instead of asking up to 50 workflows per refresh (issue 18).

`record_ticket` writes the columns from the ticket's state (`TicketState.next_clock`). Rows
recorded before this revision are filled from their `ticket_clocks` here: the live clock
(binding first, then the soonest), or a breached response clock of a ticket still `open`
(nobody answered it) before that. `ticket_clocks` has no warning instant, so those rows show
no warning time until the ticket's next record writes its own.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("next_clock_kind", sa.String(32), nullable=True),
    sa.Column("next_clock_owner", sa.String(32), nullable=True),
    sa.Column("next_clock_level", sa.Integer(), nullable=True),
    sa.Column("next_clock_status", sa.String(32), nullable=True),
    sa.Column("next_clock_warn_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_clock_due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_clock_binding", sa.Boolean(), nullable=True),
    sa.Column("next_clock_awaited", sa.Boolean(), nullable=False, server_default=sa.false()),
)

# Untyped columns: the values are copied as the database holds them, on either backend.
tickets = sa.table("tickets", *(sa.column(name) for name in ("ticket_id", "status")))
clocks = sa.table(
    "ticket_clocks",
    *(sa.column(name) for name in ("ticket_id", "kind", "line", "level", "status", "binding", "due_at")),
)


def _next_clocks(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    """Per ticket not done with, the clock its queue row counts down (see the module)."""
    found = connection.execute(
        sa.select(clocks, tickets.c.status.label("ticket_status"))
        .join(tickets, tickets.c.ticket_id == clocks.c.ticket_id)
        .where(tickets.c.status.not_in(("resolved", "closed")))
    ).mappings()
    best: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for clock in found:
        awaited = (
            clock["status"] == "breached"
            and clock["kind"] in ("first_response", "handoff_response")
            and clock["ticket_status"] == "open"
        )
        if not awaited and clock["status"] not in ("running", "warned"):
            continue
        rank = (not awaited, not clock["binding"], clock["due_at"])
        if clock["ticket_id"] not in best or rank < best[clock["ticket_id"]][0]:
            best[clock["ticket_id"]] = (rank, {**clock, "awaited": awaited})
    return {ticket_id: clock for ticket_id, (_, clock) in best.items()}


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("tickets", column)
    connection = op.get_bind()
    filled = sa.table("tickets", sa.column("ticket_id"), *(sa.column(c.name) for c in COLUMNS))
    for ticket_id, clock in _next_clocks(connection).items():
        connection.execute(
            filled.update()
            .where(filled.c.ticket_id == ticket_id)
            .values(
                next_clock_kind=clock["kind"],
                next_clock_owner=clock["line"],
                next_clock_level=clock["level"],
                next_clock_status=clock["status"],
                next_clock_due_at=clock["due_at"],
                next_clock_binding=clock["binding"],
                next_clock_awaited=clock["awaited"],
            )
        )


def downgrade() -> None:
    # In place (SQLite 3.35 or newer): batch mode would copy and drop `tickets`, and the drop
    # would cascade to the ticket's events and clocks.
    for column in reversed(COLUMNS):
        op.drop_column("tickets", column.name)
