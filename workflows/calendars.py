"""Coverage calendars: pure, deterministic open-time arithmetic (DESIGN.md §3).

A target of "N hours on calendar C" is N hours of C's open time counted from intake.
Times are local to the customer; holidays are explicit dates from the entitlement, so the
result never depends on a package release or the wall clock. Safe inside the workflow.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflows.enums import CoverageCalendar

# Far enough for any contract target, small enough that a calendar with no open days
# (every day a holiday) fails loudly instead of looping forever.
_MAX_DAYS = 3 * 366
# The local days a count can start on: one day of room before, _MAX_DAYS after.
_FIRST_DAY = date.min + timedelta(days=1)
_LAST_DAY = date.max - timedelta(days=_MAX_DAYS + 1)
_ONE_DAY = timedelta(days=1)
_NONE = timedelta(0)


@dataclass(frozen=True)
class Hours:
    opens: time
    closes: time


# The opening hours are a rule: a ticket counts on the hours its policy version pinned
# (TicketRules.calendar_hours), always passed in as `hours`; there is no default here.
CalendarHours = Mapping[CoverageCalendar, Hours]

BUSINESS_DAY = timedelta(hours=8)


class CalendarError(ValueError):
    """Input the calendar math cannot count with: naive times, negative spans, no open days."""


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError("calendar math needs timezone-aware datetimes")


def open_windows(
    start: datetime,
    calendar: CoverageCalendar,
    tz: ZoneInfo,
    holidays: Collection[date] = (),
    *,
    hours: CalendarHours,
) -> Iterator[tuple[datetime, datetime]]:
    """Open windows (UTC, half-open) that end after `start`, in order."""
    _require_aware(start)
    day_hours = hours[calendar]
    first = start.astimezone(tz).date()
    if not _FIRST_DAY <= first <= _LAST_DAY:
        raise CalendarError(f"{start.isoformat()} is outside the range the calendars can count in")
    day = first - _ONE_DAY
    for _ in range(_MAX_DAYS):
        day += _ONE_DAY
        if day.weekday() >= 5 or day in holidays:
            continue
        # Wall-clock opening and closing; fold=0 picks the first of an ambiguous hour.
        opens = datetime.combine(day, day_hours.opens, tz).astimezone(UTC)
        closes = datetime.combine(day, day_hours.closes, tz).astimezone(UTC)
        if closes <= start:
            continue
        yield max(opens, start), closes
    raise CalendarError(f"no open time on the {calendar} calendar within {_MAX_DAYS} days")


def add_open_time(
    start: datetime,
    duration: timedelta,
    calendar: CoverageCalendar,
    tz: ZoneInfo | str,
    holidays: Collection[date] = (),
    *,
    hours: CalendarHours,
) -> datetime:
    """The instant when `duration` of open time has elapsed since `start` (UTC result).

    Filed while closed, the count starts at the next opening. A deadline that lands exactly
    on a closing time is that closing instant, not the next opening.
    """
    _require_aware(start)
    if duration < timedelta(0):
        raise CalendarError("a duration of open time cannot be negative")
    start = start.astimezone(UTC)
    if calendar == CoverageCalendar.ALWAYS:
        try:
            return start + duration
        except OverflowError as err:
            raise CalendarError(f"{start.isoformat()} + {duration} is past the end of time") from err
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    remaining = duration
    for opens, closes in open_windows(start, calendar, zone, holidays, hours=hours):
        available = closes - opens
        if remaining <= available:
            return opens + remaining
        remaining -= available
    raise AssertionError("open_windows ends by raising")  # pragma: no cover


def add_open_times(
    start: datetime,
    durations: Sequence[timedelta],
    calendar: CoverageCalendar,
    tz: ZoneInfo | str,
    holidays: Collection[date] = (),
    *,
    hours: CalendarHours,
) -> list[datetime]:
    """`add_open_time` of each of `durations` from the same `start`, counted through the
    calendar once: a clock's warning and its deadline walk the same days (clocks.schedule)."""
    _require_aware(start)
    if durations and min(durations) < _NONE:
        raise CalendarError("a duration of open time cannot be negative")
    start = start.astimezone(UTC)
    if calendar == CoverageCalendar.ALWAYS:
        try:
            return [start + duration for duration in durations]
        except OverflowError as err:
            raise CalendarError(f"{start.isoformat()} + {max(durations)} is past the end of time") from err
    if not durations:
        return []
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    found: dict[int, datetime] = {}
    waiting = sorted(range(len(durations)), key=durations.__getitem__)
    counted = timedelta(0)  # the open time of the windows before this one
    for opens, closes in open_windows(start, calendar, zone, holidays, hours=hours):
        available = closes - opens
        while waiting and durations[waiting[0]] - counted <= available:
            each = waiting.pop(0)
            found[each] = opens + (durations[each] - counted)
        if not waiting:
            return [found[each] for each in range(len(durations))]
        counted += available
    raise AssertionError("open_windows ends by raising")  # pragma: no cover


def open_time_between(
    start: datetime,
    end: datetime,
    calendar: CoverageCalendar,
    tz: ZoneInfo | str,
    holidays: Collection[date] = (),
    *,
    hours: CalendarHours,
) -> timedelta:
    """Open time inside [start, end). Zero when end is not after start."""
    _require_aware(start)
    _require_aware(end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    if calendar == CoverageCalendar.ALWAYS:
        return end - start
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    total = timedelta(0)
    for opens, closes in open_windows(start, calendar, zone, holidays, hours=hours):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


def is_open(
    instant: datetime,
    calendar: CoverageCalendar,
    tz: ZoneInfo | str,
    holidays: Collection[date] = (),
    *,
    hours: CalendarHours,
) -> bool:
    _require_aware(instant)
    if calendar == CoverageCalendar.ALWAYS:
        return True
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    opens, _ = next(open_windows(instant, calendar, zone, holidays, hours=hours))
    return opens <= instant.astimezone(UTC)


def describe_duration(minutes: int, calendar: CoverageCalendar) -> str:
    """'1 h', '4 h', '1 business day', '90 min' for people reading the UI and API."""
    if calendar == CoverageCalendar.BUSINESS and minutes and minutes % 480 == 0:
        days = minutes // 480
        return f"{days} business day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"
