"""GET /reports/uptime (DESIGN.md §12): one month's availability per customer and product,
from the outages recorded on the customers' tickets and the outages of the major incidents
their tickets are linked to (DESIGN.md §13).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, Subquery, and_, case, func, or_, select, union, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Contract, Incident, IncidentProduct, Ticket
from store.report_sql import ReportRangeError, as_utc, epoch_seconds, utc_value
from store.scope import EVERY_TICKET, AnySelect, in_scope
from workflows.enums import Product, ProductType, Tier
from workflows.permissions import TicketScope
from workflows.policy import current

# The contract's own uptime target, in percent, where it sets one (overrides JSON).
UPTIME_OVERRIDE_FIELD = "uptime"


class UptimeTargetSource(StrEnum):
    """Where an uptime target comes from: the contract's own, or the policy's for the tier."""

    CONTRACT = "contract"
    TIER = "tier"


class UptimeRow(BaseModel):
    """One customer's product in one month of GET /reports/uptime."""

    customer_id: str
    product: Product
    availability_pct: float
    downtime_minutes: float
    # None where the contract promises no uptime (Basic platform).
    target_pct: float | None
    target_source: UptimeTargetSource | None
    breached: bool | None
    allowed_downtime_left_minutes: float | None


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` as [first instant, first instant of the next month), UTC calendar months."""
    try:
        year, number = (int(part) for part in month.split("-"))
        if len(month) != 7 or not 2000 <= year <= 2999:
            raise ValueError(month)
        start = datetime(year, number, 1, tzinfo=UTC)
    except ValueError:
        raise ReportRangeError(
            "report_month",
            f"`month` is a UTC calendar month as YYYY-MM (2000-2999), e.g. 2026-03; not {month!r}.",
        ) from None
    days = calendar.monthrange(year, number)[1]
    return start, start + timedelta(days=days)


def uptime_target(
    tier: str | None, product_type: str | None, overrides: dict[str, Any] | None
) -> tuple[float | None, UptimeTargetSource | None]:
    """The contract's own `overrides.uptime` (percent) where it sets one, else the policy's
    for its tier and product type (DESIGN.md §4); None where nothing is promised."""
    own = (overrides or {}).get(UPTIME_OVERRIDE_FIELD)
    if isinstance(own, int | float) and not isinstance(own, bool) and 0 < own <= 100:
        return float(own), UptimeTargetSource.CONTRACT
    if tier is None or product_type is None:
        return None, None
    target = current().uptime_targets[ProductType(product_type)][Tier(tier)]
    return target, None if target is None else UptimeTargetSource.TIER


async def uptime_report(
    *,
    session: AsyncSession,
    month: str,
    now: datetime,
    customer_id: str | None = None,
    scope: TicketScope = EVERY_TICKET,
) -> list[UptimeRow]:
    """GET /reports/uptime: one month's availability per customer and product.

    - Months are UTC calendar months, [first day 00:00, next month's first day 00:00).
    - Downtime is the union of the month's outages per product: overlapping or touching
      outages count once, merged in SQL (gaps and islands). The outages are the customer's
      tickets' (`outage_started_at`..`outage_ended_at`) and those of each incident a ticket of
      the customer's is linked to: an incident's outage (from when it opened, or the start
      given then, to when it resolved, or the end given then) is one of each of its products,
      even where the linked ticket recorded no outage itself. An outage crossing a month
      boundary counts in each month for its part in it; one still open counts until the
      month's end or `now`, whichever is earlier.
    - availability = 100 * (1 - downtime / the whole month's minutes); the target is the
      customer's active contract's (see `uptime_target`); breached when availability is
      below it; the downtime left is the month's allowance minus downtime, at least 0.
    - Rows: each product the customer has filed a ticket about by the month's end (a product
      without outages is at 100%), sorted by customer and product.
    """
    month_start, month_end = month_bounds(month)
    cap = min(month_end, max(as_utc(now), month_start))

    def filtered(stmt: AnySelect) -> AnySelect:
        stmt = in_scope(stmt, scope)
        return stmt if customer_id is None else stmt.where(Ticket.customer_id == customer_id)

    outages = _outages_in_month(filtered, month_start, month_end, cap)
    downtime = _downtime_per_product(outages)
    o = outages.c
    filed: Select[str, str] = select(Ticket.customer_id, Ticket.product).where(Ticket.received_at < month_end)
    products = union(filtered(filed), select(o.customer_id, o.product)).subquery("products")
    p, d = products.c, downtime.c
    rows = await session.execute(
        select(p.customer_id, p.product, d.seconds, Contract.tier, Contract.product_type, Contract.overrides)
        .select_from(products)
        .outerjoin(downtime, and_(d.customer_id == p.customer_id, d.product == p.product))
        .outerjoin(Contract, and_(Contract.customer_id == p.customer_id, Contract.active))
        .order_by(p.customer_id, p.product)
    )
    month_minutes = (month_end - month_start).total_seconds() / 60
    return [_uptime_row(month_minutes, *row) for row in rows]


def _outages_in_month(
    filtered: Callable[[Select[Any]], Select[Any]], month_start: datetime, month_end: datetime, cap: datetime
) -> Subquery:
    """Each outage of a ticket in reach, and of each incident (per product) a ticket in reach is
    linked to, clipped to the month (an open one ends at `cap`)."""

    def clipped(
        began: ColumnElement[Any], ended: ColumnElement[Any], product: ColumnElement[Any]
    ) -> Select[Any]:
        until = func.coalesce(ended, utc_value(cap))
        return select(
            Ticket.customer_id,
            product.label("product"),
            case((began < utc_value(month_start), utc_value(month_start)), else_=began).label("began"),
            case((until > utc_value(month_end), utc_value(month_end)), else_=until).label("ended"),
        ).where(began.is_not(None), began < month_end, or_(ended.is_(None), ended > month_start))

    of_tickets = clipped(
        Ticket.outage_started_at.expression, Ticket.outage_ended_at.expression, Ticket.product.expression
    )
    # One row per customer and incident product, however many of its tickets are linked.
    of_incidents = (
        clipped(
            Incident.outage_started_at.expression,
            Incident.outage_ended_at.expression,
            IncidentProduct.product.expression,
        )
        .select_from(Ticket)
        .join(Incident, Incident.incident_id == Ticket.incident_id)
        .join(IncidentProduct, IncidentProduct.incident_id == Incident.incident_id)
        .distinct()
    )
    every = union_all(filtered(of_tickets), filtered(of_incidents)).subquery("clipped")
    return select(every).where(every.c.ended > every.c.began).subquery("outages")


def _downtime_per_product(outages: Subquery) -> Subquery:
    """Seconds down per customer and product: overlapping or touching outages merged into
    islands (gaps and islands), so each moment counts once."""
    o = outages.c
    per_product = (o.customer_id, o.product)
    order = (o.began, o.ended)
    # An outage opens a new island when it starts after every earlier one has ended.
    reach_before = func.max(o.ended).over(partition_by=per_product, order_by=order, rows=(None, -1))
    flagged = select(
        o.customer_id,
        o.product,
        o.began,
        o.ended,
        case((or_(reach_before.is_(None), o.began > reach_before), 1), else_=0).label("opens"),
    ).subquery("flagged")
    f = flagged.c
    numbered = select(
        f.customer_id,
        f.product,
        f.began,
        f.ended,
        func.sum(f.opens)
        .over(partition_by=(f.customer_id, f.product), order_by=(f.began, f.ended), rows=(None, 0))
        .label("island"),
    ).subquery("numbered")
    n = numbered.c
    islands = (
        select(n.customer_id, n.product, func.min(n.began).label("began"), func.max(n.ended).label("ended"))
        .group_by(n.customer_id, n.product, n.island)
        .subquery("islands")
    )
    i = islands.c
    return (
        select(
            i.customer_id,
            i.product,
            func.sum(epoch_seconds(i.ended) - epoch_seconds(i.began)).label("seconds"),
        )
        .group_by(i.customer_id, i.product)
        .subquery("downtime")
    )


def _uptime_row(
    month_minutes: float,
    customer: str,
    product: str,
    seconds: float | None,
    tier: str | None,
    product_type: str | None,
    overrides: dict[str, Any] | None,
) -> UptimeRow:
    # To the millisecond: SQLite's julianday arithmetic is a float of days.
    down = round(seconds or 0.0, 3) / 60
    target, source = uptime_target(tier, product_type, overrides)
    allowed = None if target is None else month_minutes * (100 - target) / 100
    return UptimeRow(
        customer_id=customer,
        product=Product(product),
        availability_pct=round(100 * (1 - down / month_minutes), 4),
        downtime_minutes=round(down, 2),
        target_pct=target,
        target_source=source,
        breached=None if allowed is None else down > allowed,
        allowed_downtime_left_minutes=None if allowed is None else round(max(allowed - down, 0), 2),
    )
