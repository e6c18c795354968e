"""The work queue: the principal's tickets ordered by the nearest live due time.

The read model orders and filters (each ticket's live clocks are rows of `ticket_clocks`);
the page's tickets then answer their live state from their workflows, so every countdown
shows the clock's own warning and deadline, as `GET /tickets/{id}` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api import tickets_service as service
from api.console.views import ClockView, next_clock
from api.errors import ApiError
from store.catalog import CATALOG_ID, list_customers
from store.db import Ticket, TicketClockRecord
from store.scope import in_scope
from workflows.enums import ClockStatus, OwningLine, Severity, TicketStatus, Tier
from workflows.models import Principal, TicketRow, TicketState
from workflows.permissions import TicketScope, can_reach
from workflows.policy import current

PAGE_SIZE: Final = 50
# The queue's default: work that is not done with.
ACTIVE: Final = "active"
ALL: Final = "all"
ACTIVE_STATUSES: Final = (TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED, TicketStatus.WAITING_ON_CUSTOMER)
STATUS_CHOICES: Final = (ACTIVE, *(s.value for s in TicketStatus), ALL)
# Live state queries at once, per page: a page of 50 tickets is 50 workflow queries.
LIVE_QUERIES: Final = 8


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, as they stand in the URL."""

    status: str = ACTIVE
    tier: Tier | None = None
    severity: Severity | None = None
    level: int | None = None
    line: OwningLine | None = None
    customer: str | None = None
    offset: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> tuple[QueueFilters, list[str]]:
        """The filters in `params`; a value that is no choice is dropped, and said why."""
        problems: list[str] = []
        found: dict[str, Any] = {}

        def pick(name: str, convert: Any, choices: Any, label: str) -> None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return
            try:
                value = convert(raw)
                if value in choices:
                    found[name] = value
                    return
            except ValueError:
                pass
            problems.append(f"{label} {raw!r} is not one of the choices; it was left out.")

        pick("status", str, STATUS_CHOICES, "Status")
        pick("tier", Tier, list(Tier), "Tier")
        pick("severity", lambda raw: Severity(int(raw)), list(Severity), "Severity")
        pick("level", int, (1, 2, 3, 4), "Level")
        pick("line", OwningLine, list(OwningLine), "Line")
        customer = (params.get("customer") or "").strip()
        if customer:
            if CATALOG_ID.fullmatch(customer):
                found["customer"] = customer
            else:
                problems.append("That customer id is not a valid id; it was left out.")
        offset = (params.get("offset") or "").strip()
        if offset.isdigit() and int(offset) <= 1_000_000:
            found["offset"] = int(offset)
        return cls(**found), problems

    def query(self, **changes: Any) -> str:
        """The filters as a URL query (defaults left out), with `changes` applied."""
        values = {
            "status": self.status if self.status != ACTIVE else None,
            "tier": self.tier.value if self.tier else None,
            "severity": int(self.severity) if self.severity else None,
            "level": self.level,
            "line": self.line.value if self.line else None,
            "customer": self.customer,
            "offset": self.offset or None,
        } | changes
        return urlencode({k: v for k, v in values.items() if v is not None})


@dataclass
class QueueItem:
    row: TicketRow
    state: TicketState | None = None
    next: ClockView | None = None
    # The read model's nearest live binding due time, and its nearest indicative one, where
    # the live state could not be asked.
    next_due: datetime | None = None
    next_indicative: datetime | None = None

    @property
    def due(self) -> datetime | None:
        return self.next.due_at if self.next else (self.next_due or self.next_indicative)

    @property
    def rank(self) -> int:
        """0: a live binding clock (or an overdue response); 1: only indicative ones; 2: none.
        Indicative times sort after every live binding clock (DESIGN.md §4)."""
        if self.next is not None:
            return 1 if self.next.indicative else 0
        if self.next_due is not None:
            return 0
        return 1 if self.next_indicative is not None else 2


@dataclass
class Queue:
    items: list[QueueItem] = field(default_factory=list)
    total: int = 0


def _live_due(*, binding: bool) -> Any:
    live = (ClockStatus.RUNNING, ClockStatus.WARNED)
    name = "live_due" if binding else "indicative_due"
    return (
        select(TicketClockRecord.ticket_id, func.min(TicketClockRecord.due_at).label("next_due"))
        .where(TicketClockRecord.status.in_(live), TicketClockRecord.binding.is_(binding))
        .group_by(TicketClockRecord.ticket_id)
        .subquery(name)
    )


def _scoped(stmt: Select[Any], principal: Principal, filters: QueueFilters) -> Select[Any]:
    stmt = in_scope(stmt, TicketScope.of(current(), principal))
    if filters.status == ACTIVE:
        stmt = stmt.where(Ticket.status.in_(ACTIVE_STATUSES))
    elif filters.status != ALL:
        stmt = stmt.where(Ticket.status == TicketStatus(filters.status))
    if filters.tier is not None:
        stmt = stmt.where(Ticket.tier == filters.tier)
    if filters.severity is not None:
        stmt = stmt.where(Ticket.severity == int(filters.severity))
    if filters.level is not None:
        stmt = stmt.where(Ticket.level == filters.level)
    if filters.line is not None:
        stmt = stmt.where(Ticket.owning_line == filters.line)
    if filters.customer is not None:
        stmt = stmt.where(Ticket.customer_id == filters.customer)
    return stmt


async def queue(
    *, session: AsyncSession, client: Client, principal: Principal, filters: QueueFilters
) -> Queue:
    """One page of the principal's queue: nearest live binding due time first, then tickets
    with only an indicative time (DESIGN.md §4), then those without a live clock (newest
    first)."""
    live_due, indicative_due = _live_due(binding=True), _live_due(binding=False)
    total = await session.scalar(_scoped(select(func.count()).select_from(Ticket), principal, filters))
    stmt = (
        _scoped(select(Ticket, live_due.c.next_due, indicative_due.c.next_due), principal, filters)
        .outerjoin(live_due, live_due.c.ticket_id == Ticket.ticket_id)
        .outerjoin(indicative_due, indicative_due.c.ticket_id == Ticket.ticket_id)
        .order_by(
            live_due.c.next_due.asc().nulls_last(),
            indicative_due.c.next_due.asc().nulls_last(),
            Ticket.received_at.desc(),
            Ticket.ticket_id,
        )
        .limit(PAGE_SIZE)
        .offset(filters.offset)
    )
    items = [
        QueueItem(
            row=TicketRow.model_validate(ticket, from_attributes=True),
            next_due=next_due,
            next_indicative=next_indicative,
        )
        for ticket, next_due, next_indicative in (await session.execute(stmt)).all()
    ]
    await _with_live_state(client, principal, items)
    # The live clocks can be a moment ahead of the read model: order the page by them.
    items.sort(key=lambda item: (item.rank, item.due or item.row.received_at))
    return Queue(items=items, total=total or 0)


async def _with_live_state(client: Client, principal: Principal, items: list[QueueItem]) -> None:
    gate = asyncio.Semaphore(LIVE_QUERIES)

    async def ask(item: QueueItem) -> None:
        async with gate:
            try:
                item.state = await service.ticket_state(
                    client=client, principal=principal, ticket_id=item.row.ticket_id
                )
            except (ApiError, RPCError):
                return  # the read model's row still stands
        item.next = next_clock(item.state)

    await asyncio.gather(*(ask(item) for item in items if item.row.status != TicketStatus.CLOSED))


@dataclass(frozen=True)
class CustomerChoice:
    id: str
    name: str
    tier: Tier | None


async def customers_in_reach(*, session: AsyncSession, principal: Principal) -> list[CustomerChoice]:
    """The active customers the principal may file for and filter by."""
    found = await list_customers(session=session)
    return [
        CustomerChoice(c.id, c.name, c.contract.tier if c.contract else None)
        for c in found
        if c.contract is not None
        and can_reach(current(), principal, customer_id=c.id, partner_id=c.contract.partner_id)
    ]
