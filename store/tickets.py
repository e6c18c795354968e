"""Ticket rows and their events in the read model: the writes `record_ticket` makes and the
queries the API reads.

Workflows are the source of truth; these rows are a projection for lists and reports.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Executable, Select, Table, func, select
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Base, Ticket, TicketEventRecord
from store.scope import EVERY_TICKET, in_scope
from workflows.enums import Severity, TicketStatus, Tier
from workflows.models import TicketEvent, TicketRow
from workflows.permissions import TicketScope

# One statement per database backend, built once on the table: building it (its `excluded`
# columns) and the ORM's bulk-insert path cost more than running it. The values are the
# execution's parameters.
_ROW_UPSERTS: dict[str, Executable] = {}


def _table_insert(session: AsyncSession, entity: type[Base]) -> PostgresInsert | SQLiteInsert:
    """INSERT on the entity's table: Core, so the ORM's bulk-insert machinery stays out of it."""
    table = cast(Table, entity.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


def row_upsert(session: AsyncSession) -> Executable:
    backend = session.get_bind().dialect.name
    stmt = _ROW_UPSERTS.get(backend)
    if stmt is None:
        insert = _table_insert(session, Ticket)
        excluded = insert.excluded
        stmt = _ROW_UPSERTS[backend] = insert.on_conflict_do_update(
            index_elements=[Ticket.ticket_id],
            set_={name: excluded[name] for name in TicketRow.model_fields if name != "ticket_id"},
            # A late retry of an older sync must not roll the row back.
            where=excluded.updated_at >= Ticket.updated_at,
        )
    return stmt


async def upsert_ticket_row(*, session: AsyncSession, row: TicketRow) -> None:
    await session.execute(row_upsert(session), row.model_dump())


async def record_events(*, session: AsyncSession, ticket_id: str, events: list[TicketEvent]) -> None:
    if not events:
        return
    await session.execute(event_insert(session), event_params(ticket_id, events))


def event_params(ticket_id: str, events: list[TicketEvent]) -> list[dict[str, Any]]:
    """The event insert's parameters for one ticket's events."""
    return [{"ticket_id": ticket_id, **event.model_dump()} for event in events]


_INSERTS_IGNORING: dict[str, Executable] = {}


def event_insert(session: AsyncSession) -> Executable:
    return insert_ignoring(session, TicketEventRecord, ["ticket_id", "seq"])


def insert_ignoring(session: AsyncSession, entity: type[Base], key: list[str]) -> Executable:
    """INSERT that skips a row whose `key` is there already (a retried record), built once."""
    backend = session.get_bind().dialect.name
    stmt = _INSERTS_IGNORING.get(f"{backend}:{entity.__tablename__}")
    if stmt is None:
        table = cast(Table, entity.__table__)
        stmt = _table_insert(session, entity).on_conflict_do_nothing(index_elements=[table.c[k] for k in key])
        _INSERTS_IGNORING[f"{backend}:{entity.__tablename__}"] = stmt
    return stmt


def _filtered(
    stmt: Select[Any],
    *,
    scope: TicketScope,
    customer_id: str | None,
    status: TicketStatus | None,
    tier: Tier | None,
    severity: Severity | int | None,
    breached: bool | None,
    partner_breached: bool | None,
    incident_id: str | None = None,
) -> Select[Any]:
    stmt = in_scope(stmt, scope)
    if incident_id is not None:
        stmt = stmt.where(Ticket.incident_id == incident_id)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Ticket.status == status)
    if tier is not None:
        stmt = stmt.where(Ticket.tier == tier)
    if severity is not None:
        stmt = stmt.where(Ticket.severity == int(severity))
    if breached is not None:
        stmt = stmt.where(Ticket.sla_breached == breached)
    if partner_breached is not None:
        stmt = stmt.where(Ticket.partner_sla_breached == partner_breached)
    return stmt


async def list_tickets(
    *,
    session: AsyncSession,
    scope: TicketScope = EVERY_TICKET,
    customer_id: str | None = None,
    status: TicketStatus | None = None,
    tier: Tier | None = None,
    severity: Severity | int | None = None,
    breached: bool | None = None,
    partner_breached: bool | None = None,
    incident_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TicketRow], int]:
    """One page of tickets within the scope, newest received first, and the total matching.

    `scope` restricts to a principal's reach; the other arguments are the caller's filters.
    """
    filters: dict[str, Any] = {
        "scope": scope,
        "customer_id": customer_id,
        "status": status,
        "tier": tier,
        "severity": severity,
        "breached": breached,
        "partner_breached": partner_breached,
        "incident_id": incident_id,
    }
    total = await session.scalar(_filtered(select(func.count()).select_from(Ticket), **filters))
    page = await session.scalars(
        _filtered(select(Ticket), **filters)
        # ticket_id breaks ties so pages never overlap.
        .order_by(Ticket.received_at.desc(), Ticket.ticket_id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [TicketRow.model_validate(ticket, from_attributes=True) for ticket in page]
    return rows, total or 0


async def get_ticket_row(*, session: AsyncSession, ticket_id: str) -> TicketRow | None:
    ticket = await session.get(Ticket, ticket_id)
    return TicketRow.model_validate(ticket, from_attributes=True) if ticket else None


async def get_timeline(*, session: AsyncSession, ticket_id: str) -> list[TicketEvent]:
    records = await session.scalars(
        select(TicketEventRecord)
        .where(TicketEventRecord.ticket_id == ticket_id)
        .order_by(TicketEventRecord.seq)
    )
    return [TicketEvent.model_validate(record, from_attributes=True) for record in records]
