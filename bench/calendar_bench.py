"""Calendar math: add_open_time on business/extended hours vs 24x7 (plain datetime addition).

Europe/Berlin with the real German public holidays, as intake pins them (a list of dates),
random starts over two years and targets of 1 h .. 3 business days (24 h of open time).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from bench.common import Result, interleaved
from workflows.calendars import add_open_time
from workflows.entitlement import public_holidays
from workflows.enums import CoverageCalendar
from workflows.policy import current

TIMEZONE = "Europe/Berlin"
COUNTRY = "DE"
YEARS = range(2026, 2028)
MIN_TARGET = timedelta(hours=1)
MAX_TARGET = timedelta(hours=24)  # 3 business days of 8 h


Case = tuple[datetime, timedelta, CoverageCalendar]


def make_cases(count: int, seed: int = 2026) -> list[Case]:
    rng = random.Random(seed)
    span = datetime(YEARS.stop, 1, 1, tzinfo=UTC) - datetime(YEARS.start, 1, 1, tzinfo=UTC)
    first = datetime(YEARS.start, 1, 1, tzinfo=UTC)
    calendars = (CoverageCalendar.BUSINESS, CoverageCalendar.EXTENDED)
    cases: list[Case] = []
    for _ in range(count):
        start = first + timedelta(seconds=rng.randrange(int(span.total_seconds()) - 7 * 86_400))
        minutes = rng.randint(MIN_TARGET // timedelta(minutes=1), MAX_TARGET // timedelta(minutes=1))
        cases.append((start, timedelta(minutes=minutes), rng.choice(calendars)))
    return cases


def run(calls: int = 20_000, rounds: int = 5) -> Result:
    holidays: list[date] = public_holidays(COUNTRY, YEARS)
    cases = make_cases(calls)
    always = CoverageCalendar.ALWAYS
    hours = current().calendar_hours

    def subject() -> int:
        for start, duration, calendar in cases:
            add_open_time(start, duration, calendar, TIMEZONE, holidays, hours=hours)
        return len(cases)

    def baseline() -> int:
        for start, duration, _ in cases:
            add_open_time(start, duration, always, TIMEZONE, holidays, hours=hours)
        return len(cases)

    subject_s, baseline_s = interleaved(subject, baseline, rounds)
    return Result(
        name="calendar",
        metric="add_open_time",
        unit="µs/call",
        subject=subject_s * 1e6,
        baseline=baseline_s * 1e6,
        notes=[
            f"{calls:,} calls x best of {rounds} rounds; business/extended hours in {TIMEZONE} "
            f"with {len(holidays)} {COUNTRY} holidays ({YEARS.start}-{YEARS.stop - 1}); "
            "targets 1 h .. 24 h of open time. Baseline: the same calls on the 24x7 calendar.",
        ],
    )
