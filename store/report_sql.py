"""What every report shares (DESIGN.md §12): the period a report may ask for, SQL that runs
on SQLite and on PostgreSQL alike. A report keeps the tickets of the principal's reach
(`TicketScope`, applied by store/scope.py as for the ticket list).

Times are UTC throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Double, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from store.db import UTCDateTime

# A report spans at most a year (a leap year's 366 days), so it stays one quick query.
MAX_REPORT_DAYS = 366
# Ticket times a report may name: 2000-01-01 up to 3000-01-01 (the end of a last period).
REPORT_YEARS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))


class ReportRangeError(ValueError):
    """A report period that cannot be answered; `rule` names the rule it broke."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


# --- Portable SQL ----------------------------------------------------------------------------


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


def utc_value(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UTCDateTime())


def minutes_of(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


# --- Period and reach --------------------------------------------------------------------------


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
