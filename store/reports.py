"""Reports over the read model (DESIGN.md §12): SLA attainment, MTTA/MTTR, escalations, uptime.

Everything is aggregated in SQL that runs on SQLite and on PostgreSQL alike; Python only
shapes the few group rows that come back. Times are UTC throughout.

Scope is the principal's reach, as for the ticket list: `scope_customer_id` keeps one
customer's tickets, `scope_partner_id` a partner's customers' tickets, neither keeps all.
"""

from __future__ import annotations

import calendar
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Double,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from store.clock_outcomes import ESCALATION_LEVELS
from store.db import Contract, Ticket, UTCDateTime
from workflows.models import OwningLine, Product, ProductType, Tier
from workflows.policy import UPTIME_TARGETS

# A report spans at most a year (a leap year's 366 days), so it stays one quick query.
MAX_REPORT_DAYS = 366
# Ticket times a report may name: 2000-01-01 up to 3000-01-01 (the end of a last period).
REPORT_YEARS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))
# The contract's own uptime target, in percent, where it sets one (overrides JSON).
UPTIME_OVERRIDE_FIELD = "uptime"

AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


class ReportGroupBy(StrEnum):
    TIER = "tier"
    SEVERITY = "severity"
    PRODUCT = "product"
    CUSTOMER = "customer"
    PARTNER = "partner"
    LEVEL = "level"
    LINE = "line"


class UptimeTargetSource(StrEnum):
    """Where an uptime target comes from: the contract's own, or the policy's for the tier."""

    CONTRACT = "contract"
    TIER = "tier"


class SlaGroup(BaseModel):
    """One group of GET /reports/sla (DESIGN.md §12). Minutes are rounded to 0.01."""

    key: str | None
    tickets: int
    first_response_met: int
    first_response_breached: int
    attainment_pct: float | None
    mtta_p50_minutes: float | None
    mtta_p90_minutes: float | None
    mttr_mean_minutes: float | None
    escalations: dict[str, int]


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


class WeekOfSla(BaseModel):
    week_start: date
    met: int
    breached_by_line: dict[OwningLine, int]

    @property
    def attainment_pct(self) -> float | None:
        ended = self.met + sum(self.breached_by_line.values())
        return _pct(self.met, ended)


class ReportRangeError(ValueError):
    """A report period that cannot be answered; `rule` names the rule it broke."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


# --- Portable SQL ------------------------------------------------------------------------------


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970 of a stored UTC time, as a float, on either backend."""

    type = Double()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text; julianday counts days from noon, 4714 BC.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part stays double precision; EXTRACT is numeric since PostgreSQL 14, and slow to sort.
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


class week_start(FunctionElement[str]):
    """The Monday (UTC) of a stored time's week, as ISO date text (SQLite) or a date (PostgreSQL)."""

    type = String()
    inherit_cache = True
    name = "week_start"


@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 1' moves forward to a Monday: from six days back, that is this week's Monday.
    return f"date({compiler.process(element.clauses, **kw)}, '-6 days', 'weekday 1')"


@compiles(week_start, "postgresql")
def _week_start_postgresql(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS DATE)"


def _utc(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UTCDateTime())


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


# --- Shared filters ----------------------------------------------------------------------------


def as_utc(value: datetime) -> datetime:
    """A query's time in UTC; a time without an offset is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise _outside_years(value) from None


def _outside_years(value: datetime) -> ReportRangeError:
    return ReportRangeError(
        "report_period_years",
        f"Reports cover {REPORT_YEARS[0]:%Y-%m-%d} to {REPORT_YEARS[1]:%Y-%m-%d} (UTC); "
        f"{value.isoformat()} is outside.",
    )


def check_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC, refused unless start < end, both within REPORT_YEARS, and it spans
    at most MAX_REPORT_DAYS."""
    start, end = as_utc(start), as_utc(end)
    for value in (start, end):
        if not REPORT_YEARS[0] <= value <= REPORT_YEARS[1]:
            raise _outside_years(value)
    if start >= end:
        raise ReportRangeError(
            "report_period_order",
            f"`from` ({start:%Y-%m-%dT%H:%M:%SZ}) must be before `to` ({end:%Y-%m-%dT%H:%M:%SZ}); "
            "the period is [from, to).",
        )
    if end - start > timedelta(days=MAX_REPORT_DAYS):
        raise ReportRangeError(
            "report_period_too_long",
            f"A report covers at most {MAX_REPORT_DAYS} days; this one asks for "
            f"{(end - start).days}. Ask for one year or less at a time.",
        )
    return start, end


def _in_reach(stmt: AnySelect, *, scope_customer_id: str | None, scope_partner_id: str | None) -> AnySelect:
    # The principal's reach, exactly as the ticket list applies it.
    if scope_customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == scope_customer_id)
    if scope_partner_id is not None:
        stmt = stmt.where(Ticket.partner_id == scope_partner_id)
    return stmt


# --- GET /reports/sla --------------------------------------------------------------------------


def _ticket_key(group_by: ReportGroupBy) -> ColumnElement[Any]:
    keys: dict[ReportGroupBy, ColumnElement[Any]] = {
        ReportGroupBy.TIER: Ticket.tier.expression,
        ReportGroupBy.SEVERITY: cast(Ticket.severity, String),
        ReportGroupBy.PRODUCT: Ticket.product.expression,
        ReportGroupBy.CUSTOMER: Ticket.customer_id.expression,
        ReportGroupBy.PARTNER: Ticket.partner_id.expression,
        ReportGroupBy.LEVEL: cast(Ticket.level, String),
    }
    return keys[group_by]


def _line_rollup(line: OwningLine, name: str) -> ColumnElement[int]:
    column: ColumnElement[int] = getattr(Ticket, f"{line.value}_{name}")
    return column


def _members(
    *,
    start: datetime,
    end: datetime,
    group_by: ReportGroupBy,
    scope_customer_id: str | None,
    scope_partner_id: str | None,
) -> Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]:
    """One row per ticket received in [start, end) within reach and group it is in: its key,
    times, counted first responses and escalations, from the ticket's rollups.

    By line, a ticket is in the group of each line that has a response clock on it (the
    partner ticket ConnectSoft took over is in both); a line's group counts only its own
    clocks, and the escalations are ConnectSoft's (the ladder L2-L4 is ConnectSoft's).
    """
    times = (Ticket.received_at, Ticket.acknowledged_at, Ticket.resolved_at, Ticket.waiting_seconds)
    scope = {"scope_customer_id": scope_customer_id, "scope_partner_id": scope_partner_id}
    received = (Ticket.received_at >= start, Ticket.received_at < end)
    escalations = tuple(getattr(Ticket, f"escalations_l{level}") for level in ESCALATION_LEVELS)
    if group_by != ReportGroupBy.LINE:
        lines = tuple(OwningLine)
        stmt = select(
            _ticket_key(group_by).label("key"),
            *times,
            sum_of(_line_rollup(line, "responses_met") for line in lines).label("met"),
            sum_of(_line_rollup(line, "responses_breached") for line in lines).label("breached"),
            *(
                column.label(f"l{level}")
                for column, level in zip(escalations, ESCALATION_LEVELS, strict=True)
            ),
        ).where(*received)
        return _in_reach(stmt, **scope)
    per_line = []
    for line in OwningLine:
        own_escalations = escalations if line == OwningLine.CONNECTSOFT else (literal(0),) * 3
        stmt = select(
            literal(line.value, String).label("key"),
            *times,
            _line_rollup(line, "responses_met").label("met"),
            _line_rollup(line, "responses_breached").label("breached"),
            *(
                column.label(f"l{level}")
                for column, level in zip(own_escalations, ESCALATION_LEVELS, strict=True)
            ),
        ).where(*received, _line_rollup(line, "response_clocks") > 0)
        per_line.append(_in_reach(stmt, **scope))
    return union_all(*per_line)


def _by_level(columns: Sequence[ColumnElement[int]]) -> list[ColumnElement[int]]:
    return [column.label(f"l{level}") for column, level in zip(columns, ESCALATION_LEVELS, strict=True)]


def sum_of(columns: Iterable[ColumnElement[int]]) -> ColumnElement[int]:
    total, *rest = columns
    for column in rest:
        total = total + column
    return total


async def sla_report(
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    group_by: ReportGroupBy,
    scope_customer_id: str | None = None,
    scope_partner_id: str | None = None,
) -> list[SlaGroup]:
    """GET /reports/sla: per group, for tickets received in [start, end) within reach.

    Two scans of the tickets, no joins: the figures of each ticket's clocks and events are
    its rollups (`store.clock_outcomes.refresh_report_rollups`).

    - `first_response_met` / `_breached`: binding first-response clocks that have ended
      (each line's first response, and ConnectSoft's response to a partner's handoff);
      `attainment_pct` = met / (met + breached), None with neither. By line, a line's group
      counts only its own clocks.
    - MTTA: acknowledged_at - received_at (the owning line's first response), acknowledged
      tickets only. p50 and p90 are nearest-rank percentiles: the value at rank
      ceil(p/100 * n) of the group's n times in ascending order, i.e. the least time that
      at least p% of them do not exceed (`cume_dist() >= p/100`); always an observed time.
    - MTTR: the mean of resolved_at - received_at - waiting_seconds over tickets resolved now
      (a reopened ticket counts once resolved again, from its first intake).
    - escalations: `escalated` events and ConnectSoft's `critical_incident` routings at levels
      2, 3 and 4, by the level they routed to.

    Groups come sorted by key, a missing key (no partner) last.
    """
    scope = {"scope_customer_id": scope_customer_id, "scope_partner_id": scope_partner_id}
    members = _members(start=start, end=end, group_by=group_by, **scope).cte("members")
    m = members.c

    received = epoch_seconds(m.received_at)
    mttr = case((m.resolved_at.is_not(None), epoch_seconds(m.resolved_at) - received - m.waiting_seconds))
    per_group = select(
        m.key,
        func.count(),
        func.sum(m.met),
        func.sum(m.breached),
        func.avg(mttr),
        *(func.sum(getattr(m, f"l{level}")) for level in ESCALATION_LEVELS),
    ).group_by(m.key)

    # Percentiles over a narrow sort: only acknowledged tickets, only key and time.
    acknowledged = (
        select(m.key, ((epoch_seconds(m.acknowledged_at) - received) / 60).label("mtta"))
        .where(m.acknowledged_at.is_not(None))
        .subquery("acknowledged")
    )
    a = acknowledged.c
    ranked = select(
        a.key, a.mtta, func.cume_dist().over(partition_by=a.key, order_by=a.mtta).label("share_at_most")
    ).subquery("ranked")
    r = ranked.c

    def percentile(pct: int) -> ColumnElement[float]:
        # Nearest rank: the least time that at least pct% of the group's times do not exceed.
        return func.min(case((r.share_at_most >= pct / 100, r.mtta)))

    percentiles = select(r.key, percentile(50), percentile(90)).group_by(r.key)

    groups: dict[str | None, SlaGroup] = {}
    for group_key, tickets, met, breached, mttr_seconds, *escalations in await session.execute(per_group):
        groups[group_key] = SlaGroup(
            key=group_key,
            tickets=tickets,
            first_response_met=met,
            first_response_breached=breached,
            attainment_pct=_pct(met, met + breached),
            mtta_p50_minutes=None,
            mtta_p90_minutes=None,
            mttr_mean_minutes=_minutes(mttr_seconds),
            escalations={str(level): n for level, n in zip(ESCALATION_LEVELS, escalations, strict=True)},
        )
    for group_key, p50, p90 in await session.execute(percentiles):
        group = groups[group_key]
        group.mtta_p50_minutes, group.mtta_p90_minutes = round(p50, 2), round(p90, 2)
    return sorted(groups.values(), key=lambda g: (g.key is None, g.key or ""))


async def sla_weeks(
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    scope_customer_id: str | None = None,
    scope_partner_id: str | None = None,
) -> list[WeekOfSla]:
    """Every week (Monday 00:00 UTC) that [start, end) touches, with the first responses counted
    as in `sla_report` of the tickets received in it: met, and breached by line."""
    week = week_start(Ticket.received_at)
    lines = tuple(OwningLine)
    stmt = (
        select(
            week,
            func.sum(sum_of(_line_rollup(line, "responses_met") for line in lines)),
            *(func.sum(_line_rollup(line, "responses_breached")) for line in lines),
        )
        .where(Ticket.received_at >= start, Ticket.received_at < end)
        .group_by(week)
    )
    stmt = _in_reach(stmt, scope_customer_id=scope_customer_id, scope_partner_id=scope_partner_id)
    first = start.date() - timedelta(days=start.weekday())
    weeks: dict[date, WeekOfSla] = {}
    monday = first
    while datetime.combine(monday, datetime.min.time(), UTC) < end:
        weeks[monday] = WeekOfSla(week_start=monday, met=0, breached_by_line={line: 0 for line in OwningLine})
        monday += timedelta(days=7)
    for week_value, met, *breached in (await session.execute(stmt)).all():
        entry = weeks[date.fromisoformat(str(week_value))]
        entry.met = met
        entry.breached_by_line = dict(zip(lines, breached, strict=True))
    return list(weeks.values())


# Bars stacked in this order, bottom first; colours from matplotlib's default cycle.
CHART_LINES = (
    (OwningLine.PARTNER, "Partner line", "tab:orange"),
    (OwningLine.CONNECTSOFT, "ConnectSoft", "tab:red"),
)


def render_sla_chart(weeks: Sequence[WeekOfSla], *, title: str) -> bytes:
    """An SVG: attainment per week as a line (right axis, %), breaches per week stacked by line
    as bars (left axis). SVG ids: `attainment` for the line, `breaches-<line>-<week index>` for
    each bar. Weeks without an ended clock leave a gap in the line."""
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    # Its own canvas, not pyplot's global state: safe in a worker thread per request.
    FigureCanvasAgg(figure)
    bars_axes = figure.add_subplot()
    line_axes = bars_axes.twinx()
    x = list(range(len(weeks)))
    bottom = [0] * len(weeks)
    for line, label, colour in CHART_LINES:
        heights = [week.breached_by_line[line] for week in weeks]
        container = bars_axes.bar(x, heights, bottom=bottom, color=colour, label=f"Breaches: {label}")
        for index, patch in enumerate(container.patches):
            patch.set_gid(f"breaches-{line.value}-{index}")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    attainment = [week.attainment_pct for week in weeks]
    (plotted,) = line_axes.plot(
        x,
        [math.nan if pct is None else pct for pct in attainment],
        marker="o",
        color="tab:blue",
        label="Attainment %",
    )
    plotted.set_gid("attainment")
    line_axes.set_ylim(0, 105)
    line_axes.set_ylabel("First-response attainment (%)")
    bars_axes.set_ylabel("Breaches")
    bars_axes.set_ylim(0, max(max(bottom, default=0), 1) * 1.2)
    bars_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars_axes.set_xticks(x, [f"{week.week_start:%d %b}" for week in weeks], rotation=45, ha="right")
    bars_axes.set_xlabel("Week of (Monday, UTC; tickets by the week they were received)")
    bars_axes.set_title(title)
    handles = [*bars_axes.get_legend_handles_labels()[0], plotted]
    figure.legend(handles=handles, loc="outside upper right", ncols=3)
    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "escalator", "svg.fonttype": "none"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


# --- GET /reports/uptime -----------------------------------------------------------------------


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
    target = UPTIME_TARGETS[ProductType(product_type)][Tier(tier)]
    return target, None if target is None else UptimeTargetSource.TIER


async def uptime_report(
    *,
    session: AsyncSession,
    month: str,
    now: datetime,
    customer_id: str | None = None,
    scope_customer_id: str | None = None,
    scope_partner_id: str | None = None,
) -> list[UptimeRow]:
    """GET /reports/uptime: one month's availability per customer and product.

    - Months are UTC calendar months, [first day 00:00, next month's first day 00:00).
    - Downtime is the union of the month's outages (`outage_started_at`..`outage_ended_at`
      of the customer's tickets) per product: overlapping or touching outages count once,
      merged in SQL (gaps and islands). An outage crossing a month boundary counts in each
      month for its part in it; one still open counts until the month's end or `now`,
      whichever is earlier.
    - availability = 100 * (1 - downtime / the whole month's minutes); the target is the
      customer's active contract's (see `uptime_target`); breached when availability is
      below it; the downtime left is the month's allowance minus downtime, at least 0.
    - Rows: each product the customer has filed a ticket about by the month's end (a product
      without outages is at 100%), sorted by customer and product.
    """
    month_start, month_end = month_bounds(month)
    cap = min(month_end, max(as_utc(now), month_start))
    scope = {"scope_customer_id": scope_customer_id, "scope_partner_id": scope_partner_id}

    def filtered(stmt: AnySelect) -> AnySelect:
        stmt = _in_reach(stmt, **scope)
        return stmt if customer_id is None else stmt.where(Ticket.customer_id == customer_id)

    began, ended = Ticket.outage_started_at, func.coalesce(Ticket.outage_ended_at, _utc(cap))
    clipped = filtered(
        select(
            Ticket.customer_id,
            Ticket.product,
            case((began < _utc(month_start), _utc(month_start)), else_=began).label("began"),
            case((ended > _utc(month_end), _utc(month_end)), else_=ended).label("ended"),
        ).where(
            began.is_not(None),
            began < month_end,
            or_(Ticket.outage_ended_at.is_(None), Ticket.outage_ended_at > month_start),
        )
    ).subquery("clipped")
    outages = select(clipped).where(clipped.c.ended > clipped.c.began).subquery("outages")
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
    downtime = (
        select(
            i.customer_id,
            i.product,
            func.sum(epoch_seconds(i.ended) - epoch_seconds(i.began)).label("seconds"),
        )
        .group_by(i.customer_id, i.product)
        .subquery("downtime")
    )
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
    report = []
    for customer, product, seconds, tier, product_type, overrides in rows:
        # To the millisecond: SQLite's julianday arithmetic is a float of days.
        down = round(seconds or 0.0, 3) / 60
        target, source = uptime_target(tier, product_type, overrides)
        allowed = None if target is None else month_minutes * (100 - target) / 100
        report.append(
            UptimeRow(
                customer_id=customer,
                product=Product(product),
                availability_pct=round(100 * (1 - down / month_minutes), 4),
                downtime_minutes=round(down, 2),
                target_pct=target,
                target_source=source,
                breached=None if allowed is None else down > allowed,
                allowed_downtime_left_minutes=None if allowed is None else round(max(allowed - down, 0), 2),
            )
        )
    return report
