"""What the reports read from a ticket: one row per SLA clock, and the ticket's facts (DESIGN.md §12).

The record activity writes these in the transaction that writes the ticket row and its
events, after both (the clock rows reference the ticket; the escalation counts read the
events). The worker writes many tickets' records at once with the same statements
(store/ticket_records.py); for one ticket that is:

    await upsert_ticket_row(session=session, row=record.row)
    await record_events(session=session, ticket_id=record.row.ticket_id, events=record.events)
    await record_clocks(
        session=session, ticket_id=..., updated_at=record.row.updated_at, clocks=clock_rows(clocks)
    )
    await record_ticket_facts(session=session, ticket_id=..., updated_at=record.row.updated_at, ...)

Both are idempotent and guarded by the ticket's `updated_at`, as the ticket row is: a late
retry of an older flush changes nothing that a newer one wrote. Each then recounts its part of
the ticket's report rollups from the rows as they now stand: the reports scan tickets, and
never join 100,000 of them to their clocks and events.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Executable, Table, Update, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Ticket, TicketClockRecord, TicketEventRecord, dialect_insert
from workflows.enums import ClockKind, ClockStatus, CoverageCalendar, OwningLine
from workflows.models import ESCALATION_KINDS, RecordedClock, SlaClock, TicketFacts

ESCALATION_LEVELS = (2, 3, 4)


class ClockRow(BaseModel):
    """One clock of a ticket as the read model keeps it. `clock_no` is its index in the
    ticket's clock list, which only ever grows, so it names the same clock on every flush."""

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
    """The machine's clocks (`TicketState.clocks`, all of them, in order) as read-model rows."""
    return [clock_row(clock_no, clock) for clock_no, clock in enumerate(clocks)]


def clock_row(clock_no: int, clock: SlaClock) -> ClockRow:
    """One clock, by its index in the ticket's clock list, as a read-model row."""
    return ClockRow(
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


async def record_clocks(
    *, session: AsyncSession, ticket_id: str, updated_at: datetime, clocks: list[ClockRow]
) -> None:
    """Upsert every clock of a ticket by (ticket_id, clock_no), then recount the ticket's
    response rollups.

    `updated_at` is the recorded ticket row's: a clock row written by a newer flush is never
    rolled back (a clock's own fields are no order: a reopened ticket's resolution clock goes
    from met back to running).
    """
    if clocks:
        await session.execute(clock_upsert(session), clock_params(ticket_id, updated_at, clocks))
    await session.execute(response_rollups(), {"rollup_ticket_id": ticket_id})


def clock_params(ticket_id: str, updated_at: datetime, clocks: list[ClockRow]) -> list[dict[str, Any]]:
    """The clock upsert's parameters for one ticket's clocks (store/ticket_records.py sends
    many tickets' at once)."""
    return [{"ticket_id": ticket_id, "updated_at": updated_at, **clock.model_dump()} for clock in clocks]


def recorded_clock_rows(recorded: list[RecordedClock]) -> list[ClockRow]:
    """The clocks a record carries (those that changed, each by its index) as read-model rows."""
    return [clock_row(each.clock_no, each.clock) for each in recorded]


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
    """Set the ticket's report facts unless a newer flush has written the row, then recount
    its escalations from its events (so: after `record_events`).

    Run after `upsert_ticket_row` with the same `updated_at`: the ticket row then carries that
    `updated_at` exactly when this flush is the newest. `waiting_seconds` is the wall-clock
    time spent waiting on the customer, which MTTR leaves out.
    """
    facts = TicketFacts(
        acknowledged_at=acknowledged_at,
        resolved_at=resolved_at,
        waiting_seconds=waiting_seconds,
        outage_started_at=outage_started_at,
        outage_ended_at=outage_ended_at,
    )
    await session.execute(facts_update(), facts_params(ticket_id, updated_at, facts))
    await session.execute(escalation_rollups(), {"rollup_ticket_id": ticket_id})


def facts_params(ticket_id: str, updated_at: datetime, facts: TicketFacts) -> dict[str, Any]:
    """The facts update's parameters for one ticket (store/ticket_records.py sends many)."""
    return {
        "facts_ticket_id": ticket_id,
        "facts_updated_at": updated_at,
        **{f"facts_{name}": value for name, value in facts.model_dump().items()},
    }


async def refresh_report_rollups(*, session: AsyncSession, ticket_id: str | None = None) -> None:
    """Recount a ticket's report rollups, or every ticket's (a backfill), from its clock and
    event rows."""
    stmt = update(Ticket).values(_rollup_counts(clocks=True, escalations=True))
    if ticket_id is not None:
        stmt = stmt.where(Ticket.ticket_id == ticket_id)
    await session.execute(stmt)


# --- What counts ---------------------------------------------------------------------------


def response_clock(clock: type[TicketClockRecord] = TicketClockRecord) -> ColumnElement[bool]:
    """A line's first response: its first-response clock, and on a partner ticket ConnectSoft's
    response to the handoff (ConnectSoft's first response there)."""
    return or_(
        clock.kind == ClockKind.FIRST_RESPONSE.value,
        and_(clock.kind == ClockKind.HANDOFF_RESPONSE.value, clock.line == OwningLine.CONNECTSOFT.value),
    )


def escalation_event(event: type[TicketEventRecord] = TicketEventRecord) -> ColumnElement[bool]:
    """TicketEvent.is_escalation in SQL: an event of ESCALATION_KINDS that is not the partner's
    own critical-incident notice."""
    partner_notice = func.coalesce(event.detail["line"].as_string(), "") == OwningLine.PARTNER.value
    # Each kind its own comparison, not IN: an IN list is an "expanding" parameter, which an
    # executemany (many tickets' rollups at once, store/ticket_records.py) refuses.
    kinds = or_(*(event.kind == kind for kind in sorted(kind.value for kind in ESCALATION_KINDS)))
    return and_(kinds, ~partner_notice)


def _rollup_counts(*, clocks: bool, escalations: bool) -> dict[str, Any]:
    """Rollup columns as counts over the ticket's own clock and event rows. A response clock
    counts as met or breached only when binding and ended with that outcome."""
    clock, event = TicketClockRecord, TicketEventRecord

    def count_clocks(line: OwningLine, status: ClockStatus | None = None) -> Any:
        where: list[Any] = [clock.ticket_id == Ticket.ticket_id, clock.line == line.value, response_clock()]
        if status is not None:
            where += [clock.binding, clock.status == status.value]
        return select(func.count()).where(*where).scalar_subquery()

    def count_escalations(level: int) -> Any:
        where = (event.ticket_id == Ticket.ticket_id, event.level == level, escalation_event())
        return select(func.count()).where(*where).scalar_subquery()

    values: dict[str, Any] = {}
    if clocks:
        for line in OwningLine:
            values[f"{line.value}_response_clocks"] = count_clocks(line)
            values[f"{line.value}_responses_met"] = count_clocks(line, ClockStatus.MET)
            values[f"{line.value}_responses_breached"] = count_clocks(line, ClockStatus.BREACHED)
    if escalations:
        for level in ESCALATION_LEVELS:
            values[f"escalations_l{level}"] = count_escalations(level)
    return values


# --- Statements, built once (building them costs more than running them) --------------------

# The updates are built on the table, not the ORM class: executed with a list of parameters
# (store/ticket_records.py, many tickets at once) a Core statement is an executemany, where the
# ORM's would be its bulk update by primary key.
TICKETS = cast(Table, Ticket.__table__)


_CLOCK_UPSERTS: dict[str, Executable] = {}


def clock_upsert(session: AsyncSession) -> Executable:
    backend = session.get_bind().dialect.name
    stmt = _CLOCK_UPSERTS.get(backend)
    if stmt is None:
        insert = dialect_insert(session, TicketClockRecord)
        columns = [name for name in ClockRow.model_fields if name != "clock_no"] + ["updated_at"]
        stmt = _CLOCK_UPSERTS[backend] = insert.on_conflict_do_update(
            index_elements=[TicketClockRecord.ticket_id, TicketClockRecord.clock_no],
            set_={name: insert.excluded[name] for name in columns},
            where=insert.excluded.updated_at >= TicketClockRecord.updated_at,
        )
    return stmt


@cache
def response_rollups() -> Update:
    ticket = Ticket.ticket_id == bindparam("rollup_ticket_id")
    return update(TICKETS).where(ticket).values(_rollup_counts(clocks=True, escalations=False))


@cache
def escalation_rollups() -> Update:
    ticket = Ticket.ticket_id == bindparam("rollup_ticket_id")
    return update(TICKETS).where(ticket).values(_rollup_counts(clocks=False, escalations=True))


@cache
def facts_update() -> Update:
    facts = ("acknowledged_at", "resolved_at", "waiting_seconds", "outage_started_at", "outage_ended_at")
    return (
        update(TICKETS)
        .where(
            Ticket.ticket_id == bindparam("facts_ticket_id"),
            Ticket.updated_at <= bindparam("facts_updated_at"),
        )
        .values({name: bindparam(f"facts_{name}") for name in facts})
    )
