"""A major incident in the read model (DESIGN.md §13): its own row (what the reports read of it),
its tickets' pages its fan-out and its sweeps walk through, and the counts `GET /incidents/{id}`
shows.

The read model may lag the workflows: a fan-out reads which tickets are linked here, and each
ticket decides for itself whether the update applies (once, linked, open).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Incident, IncidentProduct, Ticket, TicketClockRecord, dialect_insert
from store.scope import EVERY_TICKET, in_scope
from workflows.enums import CLOSED_STATES, ClockKind, ClockStatus
from workflows.incident_model import IncidentRecord, IncidentStatus, LinkRule
from workflows.models import TicketRow
from workflows.permissions import TicketScope

_OPEN = Ticket.status.not_in([status.value for status in CLOSED_STATES])


async def record_incident(*, session: AsyncSession, record: IncidentRecord) -> None:
    """Upsert the incident's row and add its products (they never change). A resolved row is
    final: a late retry of the opening's write never turns it back to open."""
    values = record.model_dump(mode="python", exclude={"products"})
    values["status"] = record.status.value
    values["severity"] = int(record.severity)
    insert = dialect_insert(session, Incident).values(values)
    changes = {name: insert.excluded[name] for name in values if name != "incident_id"}
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[Incident.incident_id],
            set_=changes,
            where=Incident.status == IncidentStatus.OPEN.value,
        )
    )
    products = [{"incident_id": record.incident_id, "product": p.value} for p in record.products]
    await session.execute(dialect_insert(session, IncidentProduct).values(products).on_conflict_do_nothing())


def _linked(incident_id: str, scope: TicketScope = EVERY_TICKET) -> Any:
    return in_scope(select(Ticket.ticket_id).where(Ticket.incident_id == incident_id), scope)


async def linked_open_page(
    *, session: AsyncSession, incident_id: str, after: str | None, limit: int
) -> list[str]:
    """The next `limit` linked open tickets after `after`, in ticket-id order."""
    stmt = _linked(incident_id).where(_OPEN)
    if after is not None:
        stmt = stmt.where(Ticket.ticket_id > after)
    return list(await session.scalars(stmt.order_by(Ticket.ticket_id).limit(limit)))


async def count_linked_open(*, session: AsyncSession, incident_id: str) -> int:
    stmt = select(func.count()).select_from(Ticket).where(Ticket.incident_id == incident_id, _OPEN)
    return int(await session.scalar(stmt) or 0)


def _matching(rules: list[LinkRule], customer_ids: list[str] | None) -> Select[Any]:
    stmt = select(Ticket.ticket_id).where(Ticket.incident_id.is_(None), _OPEN)
    if customer_ids is not None:
        stmt = stmt.where(Ticket.customer_id.in_(customer_ids))
    clauses = []
    for rule in rules:
        clause = (
            (Ticket.product == rule.product.value)
            & Ticket.severity.in_([int(s) for s in rule.severities])
            & (Ticket.received_at >= rule.received_from)
        )
        if rule.received_to is not None:
            clause = clause & (Ticket.received_at < rule.received_to)
        clauses.append(clause)
    return stmt.where(or_(*clauses))


async def unlinked_matching_page(
    *,
    session: AsyncSession,
    rules: list[LinkRule],
    customer_ids: list[str] | None,
    after: str | None,
    limit: int,
) -> list[str]:
    """Open tickets no incident links yet that a rule matches, in ticket-id order."""
    if not rules:
        return []
    stmt = _matching(rules, customer_ids)
    if after is not None:
        stmt = stmt.where(Ticket.ticket_id > after)
    return list(await session.scalars(stmt.order_by(Ticket.ticket_id).limit(limit)))


async def incident_counts(*, session: AsyncSession, incident_id: str, scope: TicketScope) -> dict[str, int]:
    """Linked and open tickets, and how many first responses were met and breached, within `scope`."""
    linked = _linked(incident_id, scope).subquery()
    total = await session.scalar(select(func.count()).select_from(linked))
    open_ = await session.scalar(
        select(func.count()).select_from(
            in_scope(select(Ticket).where(Ticket.incident_id == incident_id, _OPEN), scope).subquery()
        )
    )
    outcomes = await session.execute(
        select(TicketClockRecord.status, func.count(func.distinct(TicketClockRecord.ticket_id)))
        .where(
            TicketClockRecord.ticket_id.in_(select(linked.c.ticket_id)),
            TicketClockRecord.kind == ClockKind.FIRST_RESPONSE.value,
            TicketClockRecord.status.in_([ClockStatus.MET.value, ClockStatus.BREACHED.value]),
        )
        .group_by(TicketClockRecord.status)
    )
    by_status = {str(status): int(count) for status, count in outcomes}
    return {
        "linked": int(total or 0),
        "open": int(open_ or 0),
        "met": by_status.get(ClockStatus.MET.value, 0),
        "breached": by_status.get(ClockStatus.BREACHED.value, 0),
    }


async def linked_tickets(
    *, session: AsyncSession, incident_id: str, scope: TicketScope, limit: int, offset: int
) -> list[TicketRow]:
    stmt = in_scope(select(Ticket).where(Ticket.incident_id == incident_id), scope)
    page = await session.scalars(
        stmt.order_by(Ticket.received_at.desc(), Ticket.ticket_id).limit(limit).offset(offset)
    )
    return [TicketRow.model_validate(ticket, from_attributes=True) for ticket in page]


async def incidents_in_scope(*, session: AsyncSession, scope: TicketScope) -> list[str]:
    """The incidents that link at least one ticket within `scope` (a partner's customers')."""
    stmt = in_scope(select(Ticket.incident_id).where(Ticket.incident_id.is_not(None)), scope).distinct()
    return sorted(str(each) for each in await session.scalars(stmt))
