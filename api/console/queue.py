"""The work queue: the principal's tickets ordered by the nearest live due time.

The read model alone orders, filters and shows it: each ticket's row carries the clock the
queue counts down (`next_clock_*`, written by `record_ticket` from the ticket's state), so a
refresh is one query, whatever the page size, and asks no workflow (issue 18).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.console.views import ClockSignal
from store.catalog import CATALOG_ID, list_customers
from store.db import Ticket
from store.scope import in_scope
from workflows.enums import OwningLine, Severity, TicketStatus, Tier
from workflows.models import Principal, TicketRow
from workflows.permissions import TicketScope, can_reach
from workflows.policy import current

PAGE_SIZE: Final = 50
# The queue's default: work that is not done with.
ACTIVE: Final = "active"
ALL: Final = "all"
ACTIVE_STATUSES: Final = (TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED, TicketStatus.WAITING_ON_CUSTOMER)
STATUS_CHOICES: Final = (ACTIVE, *(s.value for s in TicketStatus), ALL)
# An incident id as workflows/actions/incident.py `IncidentId` takes it.
INCIDENT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, as they stand in the URL."""

    status: str = ACTIVE
    tier: Tier | None = None
    severity: Severity | None = None
    level: int | None = None
    line: OwningLine | None = None
    customer: str | None = None
    # The tickets linked to one major incident (its page links here).
    incident: str | None = None
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
        incident = (params.get("incident") or "").strip()
        if incident:
            if INCIDENT_ID.fullmatch(incident):
                found["incident"] = incident
            else:
                problems.append("That incident id is not a valid id; it was left out.")
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
            "incident": self.incident,
            "offset": self.offset or None,
        } | changes
        return urlencode({k: v for k, v in values.items() if v is not None})


@dataclass
class QueueItem:
    row: TicketRow
    next: ClockSignal | None = None


@dataclass
class Queue:
    items: list[QueueItem] = field(default_factory=list)
    total: int = 0


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
    if filters.incident is not None:
        stmt = stmt.where(Ticket.incident_id == filters.incident)
    return stmt


# 0: a live binding clock, or a breached response still awaited (always binding); 1: only an
# indicative time (DESIGN.md §4: after every binding clock); 2: no live clock.
_RANK: Final = case(
    (Ticket.next_clock_due_at.is_(None), 2),
    (Ticket.next_clock_binding.is_(True), 0),
    else_=1,
)


async def queue(*, session: AsyncSession, principal: Principal, filters: QueueFilters) -> Queue:
    """One page of the principal's queue: an overdue response still awaited and the nearest
    live binding due time first, then tickets with only an indicative time (DESIGN.md §4),
    then those without a live clock (newest first). Two queries on the read model."""
    total = await session.scalar(_scoped(select(func.count()).select_from(Ticket), principal, filters))
    stmt = (
        _scoped(select(Ticket), principal, filters)
        .order_by(_RANK, Ticket.next_clock_due_at, Ticket.received_at.desc(), Ticket.ticket_id)
        .limit(PAGE_SIZE)
        .offset(filters.offset)
    )
    rows = [TicketRow.model_validate(ticket, from_attributes=True) for ticket in await session.scalars(stmt)]
    return Queue(items=[QueueItem(row=row, next=ClockSignal.of_row(row)) for row in rows], total=total or 0)


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
