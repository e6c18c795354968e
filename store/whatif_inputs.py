"""What-if's record in the read model (issue 20): each ticket's pinned opening and the actions
its workflow applied, written by `record_ticket` beside the ticket's events, and read back as
the records `escalator whatif` replays (workflows/whatif.py).

A ticket filed before its workflow recorded these (the `record-whatif-inputs` patch) has no
opening here: it is replayed from its Temporal history (`--from-histories`) or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Ticket, TicketActionRecord, TicketEventRecord, TicketOpening
from store.tickets import insert_ignoring
from workflows.actions.base import ACTIONS
from workflows.models import AppliedAction, TicketOpened
from workflows.whatif import RecordedAction, RecordedTicket


async def record_inputs(
    *, session: AsyncSession, ticket_id: str, opened: TicketOpened | None, actions: Sequence[AppliedAction]
) -> None:
    """Write the opening and the actions; a retried record writes nothing twice."""
    if opened is not None:
        await session.execute(opening_insert(session), [opening_params(ticket_id, opened)])
    if actions:
        await session.execute(action_insert(session), action_params(ticket_id, actions))


def opening_insert(session: AsyncSession) -> Executable:
    return insert_ignoring(session, TicketOpening, ["ticket_id"])


def action_insert(session: AsyncSession) -> Executable:
    return insert_ignoring(session, TicketActionRecord, ["ticket_id", "seq"])


def opening_params(ticket_id: str, opened: TicketOpened) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "opened": opened.model_dump(mode="json", exclude={"carried_state"})}


def action_params(ticket_id: str, actions: Sequence[AppliedAction]) -> list[dict[str, Any]]:
    return [
        {"ticket_id": ticket_id, **action.model_dump(mode="json", exclude={"at"}), "at": action.at}
        for action in actions
    ]


async def recorded_tickets(
    *, session: AsyncSession, ticket_ids: Sequence[str]
) -> tuple[list[RecordedTicket], list[str]]:
    """The records of these tickets, in their order, and the ids of those without an opening.

    A record reaches as far as the ticket's row (its `updated_at`: the workflow's time at its
    last record). It wakes at its recorded events' times, as the workflow had: an automatic
    close is dated when it ran."""
    stmt = select(TicketOpening.ticket_id, TicketOpening.opened).where(
        TicketOpening.ticket_id.in_(ticket_ids)
    )
    openings: dict[str, dict[str, Any]] = {t: o for t, o in (await session.execute(stmt)).all()}
    found: list[RecordedTicket] = []
    missing: list[str] = []
    for ticket_id in ticket_ids:
        document = openings.get(ticket_id)
        if document is None:
            missing.append(ticket_id)
            continue
        found.append(await _recorded(session, TicketOpened.model_validate(document)))
    return found, missing


async def _recorded(session: AsyncSession, opened: TicketOpened) -> RecordedTicket:
    ticket_id = opened.ticket_id
    until = await session.scalar(select(Ticket.updated_at).where(Ticket.ticket_id == ticket_id))
    actions_of = TicketActionRecord.ticket_id == ticket_id
    rows = await session.scalars(
        select(TicketActionRecord).where(actions_of).order_by(TicketActionRecord.seq)
    )
    actions = []
    for row in rows:
        definition = ACTIONS.get(row.update)
        if definition is None:
            raise LookupError(f"ticket {ticket_id}: no action {row.update!r} in this build")
        actions.append(RecordedAction(row.at, definition.model.model_validate(row.body), signal=row.signal))
    times = await session.scalars(
        select(TicketEventRecord.at).where(TicketEventRecord.ticket_id == ticket_id)
    )
    end: datetime = until or opened.received_at
    ticks = sorted({*times, end})
    return RecordedTicket(opened=opened, actions=tuple(actions), until=end, ticks=tuple(ticks))
