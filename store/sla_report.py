"""GET /reports/sla (DESIGN.md §12): SLA attainment, MTTA/MTTR and escalations per group, the
weekly attainment behind the chart, and the chart itself.

Everything is aggregated in SQL that runs on SQLite and on PostgreSQL alike; Python only
shapes the few group rows that come back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store.clock_outcomes import ESCALATION_LEVELS
from store.db import Ticket
from store.report_sql import epoch_seconds, minutes_of, percent, week_start
from store.scope import EVERY_TICKET, in_scope
from workflows.enums import OwningLine
from workflows.permissions import TicketScope


class ReportGroupBy(StrEnum):
    TIER = "tier"
    SEVERITY = "severity"
    PRODUCT = "product"
    CUSTOMER = "customer"
    PARTNER = "partner"
    LEVEL = "level"
    LINE = "line"
    # The major incident a ticket is linked to (DESIGN.md §13); a ticket linked to none is in
    # the group without a key, as a ticket without a partner is by partner.
    INCIDENT = "incident"


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


class WeekOfSla(BaseModel):
    week_start: date
    met: int
    breached_by_line: dict[OwningLine, int]

    @property
    def attainment_pct(self) -> float | None:
        ended = self.met + sum(self.breached_by_line.values())
        return percent(self.met, ended)


def _ticket_key(group_by: ReportGroupBy) -> ColumnElement[Any]:
    keys: dict[ReportGroupBy, ColumnElement[Any]] = {
        ReportGroupBy.TIER: Ticket.tier.expression,
        ReportGroupBy.SEVERITY: cast(Ticket.severity, String),
        ReportGroupBy.PRODUCT: Ticket.product.expression,
        ReportGroupBy.CUSTOMER: Ticket.customer_id.expression,
        ReportGroupBy.PARTNER: Ticket.partner_id.expression,
        ReportGroupBy.LEVEL: cast(Ticket.level, String),
        ReportGroupBy.INCIDENT: Ticket.incident_id.expression,
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
    scope: TicketScope,
) -> Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]:
    """One row per ticket received in [start, end) within reach and group it is in: its key,
    times, counted first responses and escalations, from the ticket's rollups.

    By line, a ticket is in the group of each line that has a response clock on it (the
    partner ticket ConnectSoft took over is in both); a line's group counts only its own
    clocks, and the escalations are ConnectSoft's (the ladder L2-L4 is ConnectSoft's).
    """
    times = (Ticket.received_at, Ticket.acknowledged_at, Ticket.resolved_at, Ticket.waiting_seconds)
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
        return in_scope(stmt, scope)
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
        per_line.append(in_scope(stmt, scope))
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
    scope: TicketScope = EVERY_TICKET,
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

    Groups come sorted by key, a missing key (no partner, no incident) last.
    """
    members = _members(start=start, end=end, group_by=group_by, scope=scope).cte("members")
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
            attainment_pct=percent(met, met + breached),
            mtta_p50_minutes=None,
            mtta_p90_minutes=None,
            mttr_mean_minutes=minutes_of(mttr_seconds),
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
    scope: TicketScope = EVERY_TICKET,
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
    stmt = in_scope(stmt, scope)
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
    bars = [
        ChartSeries(
            f"Breaches: {label}", colour, f"breaches-{line.value}", [w.breached_by_line[line] for w in weeks]
        )
        for line, label, colour in CHART_LINES
    ]
    attainment = ChartSeries("Attainment %", "tab:blue", "attainment", [w.attainment_pct for w in weeks])
    labels = [f"{week.week_start:%d %b}" for week in weeks]
    return draw_weekly_chart(labels, bars=bars, lines=[attainment], title=title)


@dataclass(frozen=True)
class ChartSeries:
    """One series of the weekly chart: bars (counts) or a line (percentages, None a gap)."""

    label: str
    colour: str
    gid: str
    values: Sequence[float | int | None]
    # A line's look, so that two lines on the same points both show.
    marker: str = "o"
    linestyle: str = "-"


WEEK_AXIS_LABEL = "Week of (Monday, UTC; tickets by the week they were received)"


def draw_weekly_chart(
    labels: Sequence[str],
    *,
    bars: Sequence[ChartSeries] = (),
    lines: Sequence[ChartSeries],
    title: str,
    x_label: str = WEEK_AXIS_LABEL,
) -> bytes:
    """The reports' weekly chart as an SVG: `bars` stacked (left axis, counts; each bar's id
    `<gid>-<week index>`), `lines` of attainment (right axis, 0-100 %; id `<gid>`). The SLA
    chart and the what-if page's before/after chart both draw with it."""
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    # Its own canvas, not pyplot's global state: safe in a worker thread per request.
    FigureCanvasAgg(figure)
    bars_axes = figure.add_subplot()
    line_axes = bars_axes.twinx() if bars else bars_axes
    x = list(range(len(labels)))
    bottom = [0] * len(labels)
    for series in bars:
        heights = [int(v or 0) for v in series.values]
        container = bars_axes.bar(x, heights, bottom=bottom, color=series.colour, label=series.label)
        for index, patch in enumerate(container.patches):
            patch.set_gid(f"{series.gid}-{index}")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    plotted = []
    for series in lines:
        values = [math.nan if pct is None else pct for pct in series.values]
        (line,) = line_axes.plot(
            x,
            values,
            marker=series.marker,
            linestyle=series.linestyle,
            color=series.colour,
            label=series.label,
        )
        line.set_gid(series.gid)
        plotted.append(line)
    line_axes.set_ylim(0, 105)
    line_axes.set_ylabel("First-response attainment (%)")
    if bars:
        bars_axes.set_ylabel("Breaches")
        bars_axes.set_ylim(0, max(max(bottom, default=0), 1) * 1.2)
        bars_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars_axes.set_xticks(x, list(labels), rotation=45, ha="right")
    bars_axes.set_xlabel(x_label)
    bars_axes.set_title(title)
    handles = [*(bars_axes.get_legend_handles_labels()[0] if bars else []), *plotted]
    figure.legend(handles=handles, loc="outside upper right", ncols=3)
    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "escalator", "svg.fonttype": "none"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()
