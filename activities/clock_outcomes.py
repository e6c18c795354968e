"""What the reports read from a ticket: one row per SLA clock, and the ticket's facts (DESIGN.md §12).

The sync activity writes these in the same transaction as the ticket row and its events,
after both (the clock rows reference the ticket; the rollups count the events):

    await upsert_ticket_row(session=session, row=sync.row)
    await record_events(session=session, ticket_id=..., events=sync.events)
    await record_clocks(
        session=session, ticket_id=..., updated_at=sync.row.updated_at, clocks=clock_rows(state.clocks)
    )
    await record_ticket_facts(session=session, ticket_id=..., updated_at=sync.row.updated_at, ...)

Both are idempotent, and both are guarded by the ticket's `updated_at`, as the ticket row is:
a late retry of an older sync changes nothing that a newer one wrote. Each then recounts the
ticket's report rollups (`refresh_report_rollups`) from the rows as they now stand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activities.db import Ticket, TicketClockRecord, TicketEventRecord, dialect_insert
from workflows.models import (
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    OwningLine,
    SlaClock,
    TicketEvent,
    TicketStatus,
)


class ClockRow(BaseModel):
    """One clock of a ticket as the read model keeps it. `clock_no` is its index in the
    ticket's clock list, which only ever grows, so it names the same clock on every sync."""

    model_config = ConfigDict(frozen=True)

    clock_no: int = Field(ge=0)
    kind: ClockKind
    # The line that owns the clock: a breach counts against it (DESIGN.md §6).
    line: OwningLine
    level: int | None = Field(default=None, ge=1, le=4)
    target_minutes: int = Field(ge=0)
    calendar: CoverageCalendar
    binding: bool
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None = None
    status: ClockStatus
    # Open-calendar seconds banked while paused (a pause still running is not in it yet).
    paused_seconds: float = Field(default=0, ge=0)


def clock_rows(clocks: list[SlaClock]) -> list[ClockRow]:
    """The machine's clocks (`TicketState.clocks`, in order) as read-model rows."""
    return [
        ClockRow(
            clock_no=clock_no,
            kind=clock.kind,
            line=clock.owner,
            level=clock.level,
            target_minutes=clock.target.minutes,
            calendar=clock.target.calendar,
            binding=clock.target.binding,
            started_at=clock.started_at,
            due_at=clock.due_at,
            stopped_at=clock.stopped_at,
            status=clock.status,
            paused_seconds=clock.paused_seconds,
        )
        for clock_no, clock in enumerate(clocks)
    ]


async def record_clocks(
    *, session: AsyncSession, ticket_id: str, updated_at: datetime, clocks: list[ClockRow]
) -> None:
    """Upsert every clock of a ticket by (ticket_id, clock_no).

    `updated_at` is the synced ticket row's: a row written by a newer sync is never rolled
    back (a clock's own fields are no order: a reopened ticket's resolution clock goes from
    met back to running).
    """
    if not clocks:
        return
    rows = [
        {"ticket_id": ticket_id, "updated_at": updated_at, **clock.model_dump(mode="python")}
        for clock in clocks
    ]
    insert = dialect_insert(session, TicketClockRecord)
    stmt = insert.on_conflict_do_update(
        index_elements=[TicketClockRecord.ticket_id, TicketClockRecord.clock_no],
        set_={name: insert.excluded[name] for name in rows[0] if name not in ("ticket_id", "clock_no")},
        where=insert.excluded.updated_at >= TicketClockRecord.updated_at,
    )
    await session.execute(stmt, rows)
    await refresh_report_rollups(session=session, ticket_id=ticket_id)


async def record_ticket_facts(
    *,
    session: AsyncSession,
    ticket_id: str,
    updated_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    waiting_seconds: float,
    outage_started_at: datetime | None,
    outage_ended_at: datetime | None,
) -> None:
    """Set the ticket's report facts, unless a newer sync has already written the row.

    Run after `upsert_ticket_row` with the same `updated_at`: the ticket row then carries
    that `updated_at` exactly when this sync is the newest.
    """
    await session.execute(
        update(Ticket)
        .where(Ticket.ticket_id == ticket_id, Ticket.updated_at <= updated_at)
        .values(
            acknowledged_at=acknowledged_at,
            resolved_at=resolved_at,
            waiting_seconds=waiting_seconds,
            outage_started_at=outage_started_at,
            outage_ended_at=outage_ended_at,
        )
    )
    await refresh_report_rollups(session=session, ticket_id=ticket_id)


# --- Report rollups --------------------------------------------------------------------------

ESCALATION_LEVELS = (2, 3, 4)


def response_clock(clock: type[TicketClockRecord] = TicketClockRecord) -> ColumnElement[bool]:
    """A line's first response: its first-response clock, and on a partner ticket ConnectSoft's
    response to the handoff (ConnectSoft's first response there)."""
    return or_(
        clock.kind == ClockKind.FIRST_RESPONSE.value,
        and_(clock.kind == ClockKind.HANDOFF_RESPONSE.value, clock.line == OwningLine.CONNECTSOFT.value),
    )


def escalation_event(event: type[TicketEventRecord] = TicketEventRecord) -> ColumnElement[bool]:
    """An escalation: `escalated`, or ConnectSoft's `critical_incident` routing. The partner's
    critical-incident notice pages the partner's own on-call and routes nothing."""
    partner_notice = func.coalesce(event.detail["line"].as_string(), "") == OwningLine.PARTNER.value
    return or_(event.kind == "escalated", and_(event.kind == "critical_incident", ~partner_notice))


def _rollups() -> dict[str, Any]:
    """Each rollup column as a count over the ticket's own clock and event rows."""
    clock, event = TicketClockRecord, TicketEventRecord

    def clocks(line: OwningLine, status: ClockStatus | None = None) -> Any:
        where: list[Any] = [clock.ticket_id == Ticket.ticket_id, clock.line == line.value, response_clock()]
        if status is not None:
            where += [clock.binding, clock.status == status.value]
        return select(func.count()).where(*where).scalar_subquery()

    def escalations(level: int) -> Any:
        where = (event.ticket_id == Ticket.ticket_id, event.level == level, escalation_event())
        return select(func.count()).where(*where).scalar_subquery()

    values: dict[str, Any] = {}
    for line in OwningLine:
        values[f"{line.value}_response_clocks"] = clocks(line)
        values[f"{line.value}_responses_met"] = clocks(line, ClockStatus.MET)
        values[f"{line.value}_responses_breached"] = clocks(line, ClockStatus.BREACHED)
    for level in ESCALATION_LEVELS:
        values[f"escalations_l{level}"] = escalations(level)
    return values


async def refresh_report_rollups(*, session: AsyncSession, ticket_id: str | None = None) -> None:
    """Recount a ticket's report rollups (every ticket's with no id, for a backfill) from its
    ticket_clocks and ticket_events rows: the reports scan tickets once, without joining them.

    A response clock counts as met or breached only when binding and ended with that outcome.
    """
    stmt = update(Ticket).values(_rollups())
    if ticket_id is not None:
        stmt = stmt.where(Ticket.ticket_id == ticket_id)
    await session.execute(stmt)


# The events that start and end a wait on the customer (workflows/machine.py).
WAIT_STARTS = frozenset({"waiting_on_customer"})
WAIT_ENDS = frozenset({"resumed", "resolved", "closed"})


def waiting_seconds(events: list[TicketEvent], *, status: TicketStatus, now: datetime) -> float:
    """Wall-clock seconds a ticket has spent waiting on the customer, from its whole timeline
    (`TicketState.events`): each wait runs from `waiting_on_customer` to the next resume,
    resolution or close, and a wait still running counts until `now`."""
    total = 0.0
    since: datetime | None = None
    for event in events:
        if event.kind in WAIT_STARTS and since is None:
            since = event.at
        elif event.kind in WAIT_ENDS and since is not None:
            total += (event.at - since).total_seconds()
            since = None
    if since is not None and status == TicketStatus.WAITING_ON_CUSTOMER:
        total += (now - since).total_seconds()
    return max(total, 0.0)
