"""Coverage-calendar math (DESIGN.md §3) and the response-target table (§4).

Pure functions only: no Temporal, no database. Holidays are resolved once, at import,
the way intake resolves them (``public_holidays``), and then passed as explicit dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.factories import CALENDAR_HOURS
from workflows import calendars
from workflows.calendars import CalendarError
from workflows.entitlement import build_entitlement, default_response_targets, public_holidays
from workflows.enums import CoverageCalendar, ProductType, Severity, Tier
from workflows.terms import ContractTerms

# The calendar math on the current policy's opening hours (a ticket passes its pinned ones).
add_open_time = partial(calendars.add_open_time, hours=CALENDAR_HOURS)
add_open_times = partial(calendars.add_open_times, hours=CALENDAR_HOURS)
open_time_between = partial(calendars.open_time_between, hours=CALENDAR_HOURS)
open_windows = partial(calendars.open_windows, hours=CALENDAR_HOURS)
is_open = partial(calendars.is_open, hours=CALENDAR_HOURS)

ALWAYS, EXTENDED, BUSINESS = CoverageCalendar.ALWAYS, CoverageCalendar.EXTENDED, CoverageCalendar.BUSINESS

# Zone -> country whose public holidays apply (None: no holidays).
COUNTRY_OF: dict[str, str | None] = {
    "Europe/Berlin": "DE",
    "America/New_York": "US",
    "Australia/Sydney": "AU",
    "Asia/Kolkata": "IN",
    "UTC": None,
}
ZONES = {name: ZoneInfo(name) for name in COUNTRY_OF}
# Resolved once, at import, as intake would: explicit dates, never the package at call time.
HOLIDAYS: dict[str, list[date]] = {
    name: public_holidays(country, range(2026, 2029)) for name, country in COUNTRY_OF.items()
}

OPENS = {EXTENDED: time(8), BUSINESS: time(9)}
CLOSES = {EXTENDED: time(20), BUSINESS: time(17)}

FIRST_DAY = date(2026, 1, 1)
LAST_DAY = date(2027, 12, 31)

PROPERTY_SETTINGS = settings(deadline=None, max_examples=200)


def _transition_days(zone: ZoneInfo) -> list[date]:
    """Local dates in 2026-2027 on which the zone's UTC offset changes."""
    days = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        today = datetime.combine(day, time(0), zone).utcoffset()
        tomorrow = datetime.combine(day + timedelta(days=1), time(0), zone).utcoffset()
        if today != tomorrow:
            days.append(day)
        day += timedelta(days=1)
    return days


DST_DAYS = {name: _transition_days(zone) for name, zone in ZONES.items()}


def test_dst_transition_days_are_the_known_ones() -> None:
    # A guard on the strategy below: it really does aim at the DST changes.
    assert date(2026, 3, 29) in DST_DAYS["Europe/Berlin"]
    assert date(2026, 10, 25) in DST_DAYS["Europe/Berlin"]
    assert date(2026, 3, 8) in DST_DAYS["America/New_York"]
    assert date(2026, 4, 5) in DST_DAYS["Australia/Sydney"]
    assert DST_DAYS["Asia/Kolkata"] == DST_DAYS["UTC"] == []


# --- strategies -----------------------------------------------------------------------------

calendars = st.sampled_from([ALWAYS, EXTENDED, BUSINESS])
zone_names = st.sampled_from(sorted(ZONES))
minutes = st.integers(min_value=0, max_value=6000)


def _local_to_utc(day: date, wall: time, zone: ZoneInfo, fold: int = 0) -> datetime:
    return datetime.combine(day, wall, zone).replace(fold=fold).astimezone(UTC)


def starts(zone_name: str) -> st.SearchStrategy[datetime]:
    """Intake instants (UTC-aware) in 2026-2027, biased to the instants where bugs live."""
    zone = ZONES[zone_name]
    anywhere = st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2027, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    )
    # Exact local opening and closing instants of both calendars.
    at_edges = st.builds(
        lambda day, wall: _local_to_utc(day, wall, zone),
        st.dates(FIRST_DAY, LAST_DAY),
        st.sampled_from([time(8), time(9), time(17), time(20)]),
    )
    strategies = [anywhere, at_edges]
    if DST_DAYS[zone_name]:
        # Any whole minute of the day on, or next to, a DST-transition day, either fold.
        near_dst = st.builds(
            lambda day, shift, minute, fold: _local_to_utc(
                day + timedelta(days=shift), time(minute // 60, minute % 60), zone, fold
            ),
            st.sampled_from(DST_DAYS[zone_name]),
            st.integers(-3, 1),
            st.integers(0, 24 * 60 - 1),
            st.integers(0, 1),
        )
        strategies.append(near_dst)
    return st.one_of(strategies)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, CoverageCalendar, datetime]:
    zone_name = draw(zone_names)
    return zone_name, draw(calendars), draw(starts(zone_name))


@st.composite
def ordered_start_pairs(draw: st.DrawFn) -> tuple[str, CoverageCalendar, datetime, datetime]:
    zone_name = draw(zone_names)
    first, second = sorted([draw(starts(zone_name)), draw(starts(zone_name))])
    return zone_name, draw(calendars), first, second


def _add(zone_name: str, calendar: CoverageCalendar, start: datetime, mins: int) -> datetime:
    return add_open_time(start, timedelta(minutes=mins), calendar, ZONES[zone_name], HOLIDAYS[zone_name])


def _between(zone_name: str, calendar: CoverageCalendar, start: datetime, end: datetime) -> timedelta:
    return open_time_between(start, end, calendar, ZONES[zone_name], HOLIDAYS[zone_name])


def _is_open(zone_name: str, calendar: CoverageCalendar, instant: datetime) -> bool:
    return is_open(instant, calendar, ZONES[zone_name], HOLIDAYS[zone_name])


# Hand-picked examples fed to every property on top of the random ones.
BERLIN_FRIDAY_CLOSE = datetime(2026, 6, 12, 15, 0, tzinfo=UTC)  # Fri 17:00 CEST
BERLIN_SPRING_FORWARD = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, 1 h before the gap
BERLIN_FALL_BACK = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 CEST, before the repeat
NEW_YORK_FRIDAY_BEFORE_DST = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)  # Fri 18:00 EST
SYDNEY_DST_END = datetime(2026, 4, 4, 14, 30, tzinfo=UTC)  # Sun 5 Apr 01:30 AEDT
KOLKATA_OPENING = datetime(2026, 2, 10, 3, 30, tzinfo=UTC)  # Tue 09:00 IST


# --- properties -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenario=scenarios(), mins=minutes)
@example(scenario=("Europe/Berlin", BUSINESS, BERLIN_FRIDAY_CLOSE), mins=480)
@example(scenario=("Europe/Berlin", BUSINESS, datetime(2026, 6, 12, 7, 0, tzinfo=UTC)), mins=480)
@example(scenario=("America/New_York", EXTENDED, NEW_YORK_FRIDAY_BEFORE_DST), mins=240)
@example(scenario=("Australia/Sydney", BUSINESS, SYDNEY_DST_END), mins=60)
@example(scenario=("Asia/Kolkata", EXTENDED, KOLKATA_OPENING), mins=660)
def test_deadline_is_never_inside_closed_time(scenario, mins) -> None:
    zone_name, calendar, start = scenario
    deadline = _add(zone_name, calendar, start, mins)
    assert deadline.utcoffset() == timedelta(0)
    assert deadline >= start
    if mins == 0:
        return
    # The last second before the deadline (durations are >= 1 minute) is open time...
    one_second = timedelta(seconds=1)
    assert _is_open(zone_name, calendar, deadline - one_second)
    assert _between(zone_name, calendar, deadline - one_second, deadline) == one_second
    # ...and the deadline itself is open, unless it is exactly a closing instant.
    if not _is_open(zone_name, calendar, deadline):
        assert calendar != ALWAYS
        assert deadline.astimezone(ZONES[zone_name]).time() == CLOSES[calendar]


@PROPERTY_SETTINGS
@given(scenario=scenarios(), mins=minutes)
@example(scenario=("Europe/Berlin", BUSINESS, BERLIN_FRIDAY_CLOSE), mins=0)
@example(scenario=("Europe/Berlin", BUSINESS, datetime(2026, 12, 24, 9, 0, tzinfo=UTC)), mins=0)
@example(scenario=("Asia/Kolkata", BUSINESS, datetime(2026, 2, 10, 16, 30, tzinfo=UTC)), mins=0)
def test_a_ticket_filed_while_closed_starts_counting_at_the_next_opening(scenario, mins) -> None:
    zone_name, calendar, start = scenario
    if _is_open(zone_name, calendar, start):
        assert _add(zone_name, calendar, start, 0) == start
        return
    opening = _add(zone_name, calendar, start, 0)
    assert opening > start
    assert opening.astimezone(ZONES[zone_name]).time() == OPENS[calendar]
    assert _between(zone_name, calendar, start, opening) == timedelta(0)
    # Counting from intake and counting from the opening are the same thing.
    assert _add(zone_name, calendar, start, mins) == _add(zone_name, calendar, opening, mins)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), first=minutes, second=st.integers(min_value=1, max_value=6000))
@example(scenario=("Europe/Berlin", BUSINESS, datetime(2026, 6, 12, 7, 0, tzinfo=UTC)), first=480, second=1)
@example(scenario=("America/New_York", EXTENDED, NEW_YORK_FRIDAY_BEFORE_DST), first=120, second=120)
@example(scenario=("Europe/Berlin", ALWAYS, BERLIN_FALL_BACK), first=60, second=60)
def test_adding_a_then_b_equals_adding_a_plus_b(scenario, first, second) -> None:
    zone_name, calendar, start = scenario
    stepwise = _add(zone_name, calendar, _add(zone_name, calendar, start, first), second)
    assert stepwise == _add(zone_name, calendar, start, first + second)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), spans=st.lists(minutes, max_size=4))
@example(scenario=("Europe/Berlin", BUSINESS, BERLIN_FRIDAY_CLOSE), spans=[480, 384])
@example(scenario=("America/New_York", EXTENDED, NEW_YORK_FRIDAY_BEFORE_DST), spans=[192, 240, 240, 0])
def test_several_spans_counted_at_once_are_each_span_counted_alone(scenario, spans) -> None:
    """A clock's warning and deadline are counted in one walk of the calendar (in any order)."""
    zone_name, calendar, start = scenario
    durations = [timedelta(minutes=mins) for mins in spans]
    found = add_open_times(start, durations, calendar, ZONES[zone_name], HOLIDAYS[zone_name])
    assert found == [_add(zone_name, calendar, start, mins) for mins in spans]


def test_several_spans_refuse_a_negative_one_as_one_span_does() -> None:
    spans = [timedelta(minutes=60), timedelta(minutes=-1)]
    for calendar in (ALWAYS, BUSINESS):
        with pytest.raises(CalendarError, match="cannot be negative"):
            add_open_times(BERLIN_FRIDAY_CLOSE, spans, calendar, ZONES["Europe/Berlin"])


@PROPERTY_SETTINGS
@given(scenario=scenarios(), mins=minutes)
@example(scenario=("Europe/Berlin", BUSINESS, BERLIN_FRIDAY_CLOSE), mins=480)
@example(scenario=("Europe/Berlin", ALWAYS, BERLIN_SPRING_FORWARD), mins=60)
@example(scenario=("Australia/Sydney", EXTENDED, SYDNEY_DST_END), mins=6000)
def test_open_time_between_intake_and_deadline_equals_the_target(scenario, mins) -> None:
    zone_name, calendar, start = scenario
    deadline = _add(zone_name, calendar, start, mins)
    assert _between(zone_name, calendar, start, deadline) == timedelta(minutes=mins)


@PROPERTY_SETTINGS
@given(pair=ordered_start_pairs(), mins=minutes)
@example(
    pair=(
        "Europe/Berlin",
        BUSINESS,
        datetime(2026, 6, 12, 14, 59, tzinfo=UTC),  # Fri 16:59 CEST
        BERLIN_FRIDAY_CLOSE,  # Fri 17:00 CEST
    ),
    mins=1,
)
def test_deadline_is_monotone_in_intake_time(pair, mins) -> None:
    zone_name, calendar, earlier, later = pair
    assert _add(zone_name, calendar, earlier, mins) <= _add(zone_name, calendar, later, mins)


@PROPERTY_SETTINGS
@given(zone_name=zone_names, start=st.data(), mins=minutes)
def test_24x7_is_absolute_elapsed_time_even_across_dst(zone_name, start, mins) -> None:
    instant = start.draw(starts(zone_name))
    deadline = _add(zone_name, ALWAYS, instant, mins)
    assert deadline == instant.astimezone(UTC) + timedelta(minutes=mins)
    assert _between(zone_name, ALWAYS, instant, deadline) == timedelta(minutes=mins)


@PROPERTY_SETTINGS
@given(scenario=scenarios(), span=st.integers(min_value=0, max_value=21 * 24 * 60))
def test_open_windows_are_ordered_disjoint_and_inside_working_hours(scenario, span) -> None:
    zone_name, calendar, start = scenario
    if calendar == ALWAYS:
        return
    zone, holidays = ZONES[zone_name], HOLIDAYS[zone_name]
    horizon = start + timedelta(minutes=span)
    previous_close = None
    for opens, closes in open_windows(start, calendar, zone, holidays):
        if opens >= horizon:
            break
        assert start <= opens < closes
        if previous_close is not None:
            assert previous_close < opens
        local_open, local_close = opens.astimezone(zone), closes.astimezone(zone)
        assert local_open.date() == local_close.date()
        assert local_open.weekday() < 5
        assert local_open.date() not in holidays
        assert OPENS[calendar] <= local_open.time() and local_close.time() == CLOSES[calendar]
        previous_close = closes


# --- the response-target table (DESIGN.md §4) -----------------------------------------------

HOUR, DAY = 60, 8 * 60
RECEIVED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _terms(tier: Tier, product_type: ProductType = ProductType.PLATFORM, **extra) -> ContractTerms:
    return ContractTerms(
        contract_id=f"ctr-{tier}-{product_type}",
        customer_id="demo",
        customer_name="Demo",
        tier=tier,
        product_type=product_type,
        timezone="Europe/Berlin",
        country="DE",
        **extra,
    )


# (tier, severity, minutes, calendar, binding): one row per cell of §4's table.
TABLE = [
    (Tier.PREMIUM, Severity.CRITICAL, 1 * HOUR, ALWAYS, True),
    (Tier.PREMIUM, Severity.HIGH, 4 * HOUR, EXTENDED, True),
    (Tier.PREMIUM, Severity.MEDIUM, 1 * DAY, BUSINESS, True),
    (Tier.PREMIUM, Severity.LOW, 2 * DAY, BUSINESS, True),
    (Tier.STANDARD, Severity.CRITICAL, 4 * HOUR, EXTENDED, True),
    (Tier.STANDARD, Severity.HIGH, 1 * DAY, BUSINESS, True),
    (Tier.STANDARD, Severity.MEDIUM, 2 * DAY, BUSINESS, True),
    (Tier.STANDARD, Severity.LOW, 3 * DAY, BUSINESS, True),
    (Tier.BASIC, Severity.CRITICAL, 3 * DAY, BUSINESS, False),
    (Tier.BASIC, Severity.HIGH, 3 * DAY, BUSINESS, False),
    (Tier.BASIC, Severity.MEDIUM, 3 * DAY, BUSINESS, False),
    (Tier.BASIC, Severity.LOW, 3 * DAY, BUSINESS, False),
]


@pytest.mark.parametrize(
    ("tier", "severity", "expected_minutes", "calendar", "binding"),
    TABLE,
    ids=[f"{tier.label}-sev{int(sev)}-{m}min-{cal}" for tier, sev, m, cal, _ in TABLE],
)
def test_response_target_matches_the_design_table(
    tier, severity, expected_minutes, calendar, binding
) -> None:
    defaults = default_response_targets(tier, ProductType.PLATFORM)[severity]
    pinned = build_entitlement(_terms(tier), received_at=RECEIVED).response_target(severity)
    for target in (defaults, pinned):
        assert (target.minutes, target.calendar, target.binding) == (expected_minutes, calendar, binding)


@pytest.mark.parametrize("tier", [Tier.PREMIUM, Tier.STANDARD], ids=lambda t: t.label)
@pytest.mark.parametrize("severity", list(Severity), ids=lambda s: f"sev{int(s)}")
def test_bespoke_response_target_is_one_business_day_for_every_severity(tier, severity) -> None:
    target = build_entitlement(
        _terms(tier, ProductType.BESPOKE, project="portal"), received_at=RECEIVED
    ).response_target(severity)
    assert (target.minutes, target.calendar, target.binding) == (1 * DAY, BUSINESS, True)


PREMIUM_24X7 = [
    (Severity.CRITICAL, 1 * HOUR),
    (Severity.HIGH, 4 * HOUR),
    (Severity.MEDIUM, 1 * DAY),
    (Severity.LOW, 2 * DAY),
]


@pytest.mark.parametrize(
    ("severity", "expected_minutes"),
    PREMIUM_24X7,
    ids=[f"premium-24x7-sev{int(s)}-{m}min" for s, m in PREMIUM_24X7],
)
def test_premium_24x7_option_runs_every_target_on_24x7(severity, expected_minutes) -> None:
    entitlement = build_entitlement(_terms(Tier.PREMIUM, coverage_24x7=True), received_at=RECEIVED)
    target = entitlement.response_target(severity)
    assert (target.minutes, target.calendar, target.binding) == (expected_minutes, ALWAYS, True)


def test_the_24x7_option_does_not_change_standard_targets() -> None:
    with_option = default_response_targets(Tier.STANDARD, ProductType.PLATFORM, coverage_24x7=True)
    assert with_option == default_response_targets(Tier.STANDARD, ProductType.PLATFORM)


# --- explicit deadlines, worked by hand -----------------------------------------------------


def test_holiday_facts_the_cases_below_rely_on() -> None:
    de, us, au = HOLIDAYS["Europe/Berlin"], HOLIDAYS["America/New_York"], HOLIDAYS["Australia/Sydney"]
    # Christmas Eve and New Year's Eve are working days in DE; 25/26 Dec and 1 Jan are not.
    assert date(2026, 12, 24) not in de and date(2026, 12, 31) not in de
    assert {date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1)} <= set(de)
    # Thanksgiving 2026 is Thursday 26 Nov; the Friday after is not a federal holiday.
    assert date(2026, 11, 26) in us and date(2026, 11, 27) not in us
    # Easter 2026 in AU: Good Friday 3 Apr and Easter Monday 6 Apr, around the DST end.
    assert {date(2026, 4, 3), date(2026, 4, 6)} <= set(au)
    assert HOLIDAYS["UTC"] == []


@dataclass(frozen=True)
class Case:
    id: str
    zone: str
    calendar: CoverageCalendar
    minutes: int
    filed: str  # ISO 8601 with the local UTC offset, worked out by hand
    due: str  # ditto: the local wall time and offset of the expected deadline


CASES = [
    # Fri 12 Jun 2026 16:00 CEST: 1 h to 17:00; Sat/Sun closed; Mon 15 Jun 09:00 + 7 h = 16:00.
    Case(
        "weekend-berlin-business-1d-fri-1600-due-mon-1600",
        "Europe/Berlin",
        BUSINESS,
        480,
        "2026-06-12T16:00+02:00",
        "2026-06-15T16:00+02:00",
    ),
    # Thu 24 Dec 2026 10:00 CET (not a DE holiday): 7 h to 17:00; Fri 25 + Sat 26 holidays,
    # Sun 27 closed; Mon 28 Dec 09:00 + 1 h = 10:00 CET.
    Case(
        "holiday-berlin-christmas-business-1d-thu-24dec-1000-due-mon-28dec-1000",
        "Europe/Berlin",
        BUSINESS,
        480,
        "2026-12-24T10:00+01:00",
        "2026-12-28T10:00+01:00",
    ),
    # Wed 25 Nov 2026 15:00 EST: 2 h to 17:00; Thu 26 Thanksgiving; Fri 27 09:00 + 6 h = 15:00.
    Case(
        "holiday-new-york-thanksgiving-business-1d-wed-1500-due-fri-1500",
        "America/New_York",
        BUSINESS,
        480,
        "2026-11-25T15:00-05:00",
        "2026-11-27T15:00-05:00",
    ),
    # Fri 25 Dec 2026 09:00 UTC, no country so no holidays: 09:00 + 1 h = 10:00 the same day.
    Case(
        "no-country-utc-christmas-is-a-working-day",
        "UTC",
        BUSINESS,
        60,
        "2026-12-25T09:00+00:00",
        "2026-12-25T10:00+00:00",
    ),
    # Tue 10 Feb 2026 22:00 IST (UTC+5:30), closed: counting starts Wed 11 Feb 09:00, + 1 h = 10:00.
    Case(
        "after-hours-kolkata-business-filed-2200-starts-0900-next-day",
        "Asia/Kolkata",
        BUSINESS,
        60,
        "2026-02-10T22:00+05:30",
        "2026-02-11T10:00+05:30",
    ),
    Case(
        "after-hours-kolkata-business-zero-target-is-next-opening",
        "Asia/Kolkata",
        BUSINESS,
        0,
        "2026-02-10T22:00+05:30",
        "2026-02-11T09:00+05:30",
    ),
    # Tue 10 Feb 2026 07:00 EST, extended opens 08:00: 08:00 + 4 h = 12:00 EST.
    Case(
        "after-hours-new-york-extended-filed-0700-starts-0800",
        "America/New_York",
        EXTENDED,
        240,
        "2026-02-10T07:00-05:00",
        "2026-02-10T12:00-05:00",
    ),
    Case(
        "after-hours-new-york-extended-zero-target-is-0800",
        "America/New_York",
        EXTENDED,
        0,
        "2026-02-10T07:00-05:00",
        "2026-02-10T08:00-05:00",
    ),
    # Fri 13 Feb 2026 18:00 AEDT (UTC+11), closed until Mon 16 Feb 09:00; + 1 h = 10:00 AEDT.
    Case(
        "after-hours-sydney-business-friday-evening-due-monday-1000",
        "Australia/Sydney",
        BUSINESS,
        60,
        "2026-02-13T18:00+11:00",
        "2026-02-16T10:00+11:00",
    ),
    # Tue 10 Feb 2026 19:30 IST: 30 min to the 20:00 close; Wed 08:00 + 30 min = 08:30.
    Case(
        "after-hours-kolkata-extended-half-hour-offset-spills-to-next-morning",
        "Asia/Kolkata",
        EXTENDED,
        60,
        "2026-02-10T19:30+05:30",
        "2026-02-11T08:30+05:30",
    ),
    # Tue 10 Feb 2026 13:00 CET + 4 h = 17:00 CET exactly: the closing instant, not Wed 09:00.
    Case(
        "closing-instant-berlin-business-1300-plus-4h-due-1700-same-day",
        "Europe/Berlin",
        BUSINESS,
        240,
        "2026-02-10T13:00+01:00",
        "2026-02-10T17:00+01:00",
    ),
    # Tue 10 Feb 2026 09:00 CET + 8 h = 17:00 CET: a whole business day closes the same day.
    Case(
        "closing-instant-berlin-business-0900-plus-1d-due-1700-same-day",
        "Europe/Berlin",
        BUSINESS,
        480,
        "2026-02-10T09:00+01:00",
        "2026-02-10T17:00+01:00",
    ),
    # Tue 10 Feb 2026 16:00 EST + 4 h = 20:00 EST: extended's closing instant.
    Case(
        "closing-instant-new-york-extended-1600-plus-4h-due-2000-same-day",
        "America/New_York",
        EXTENDED,
        240,
        "2026-02-10T16:00-05:00",
        "2026-02-10T20:00-05:00",
    ),
    # Sun 29 Mar 2026 01:30 CET = 00:30 UTC; + 60 real minutes = 01:30 UTC = 03:30 CEST
    # (02:00-03:00 local does not exist that night).
    Case(
        "dst-berlin-spring-forward-24x7-1h-filed-0130-due-0330",
        "Europe/Berlin",
        ALWAYS,
        60,
        "2026-03-29T01:30+01:00",
        "2026-03-29T03:30+02:00",
    ),
    # Fri 6 Mar 2026 18:00 EST: 2 h to 20:00; weekend (clocks go forward Sun 8 Mar);
    # Mon 9 Mar 08:00 EDT + 2 h = 10:00 EDT (UTC-4).
    Case(
        "dst-new-york-spring-forward-extended-4h-fri-1800-due-mon-1000-edt",
        "America/New_York",
        EXTENDED,
        240,
        "2026-03-06T18:00-05:00",
        "2026-03-09T10:00-04:00",
    ),
    # Fri 30 Oct 2026 18:00 EDT: 2 h to 20:00; clocks go back Sun 1 Nov;
    # Mon 2 Nov 08:00 EST + 2 h = 10:00 EST (UTC-5).
    Case(
        "dst-new-york-fall-back-extended-4h-fri-1800-due-mon-1000-est",
        "America/New_York",
        EXTENDED,
        240,
        "2026-10-30T18:00-04:00",
        "2026-11-02T10:00-05:00",
    ),
    # Sun 5 Apr 2026 01:30 AEDT = Sat 14:30 UTC; + 120 real minutes = 16:30 UTC = 02:30 AEST:
    # the wall clock moves one hour because 02:00-03:00 happens twice.
    Case(
        "dst-sydney-end-24x7-2h-filed-0130-aedt-due-0230-aest",
        "Australia/Sydney",
        ALWAYS,
        120,
        "2026-04-05T01:30+11:00",
        "2026-04-05T02:30+10:00",
    ),
    # Thu 2 Apr 2026 16:00 AEDT: 1 h to 17:00; Good Friday 3 Apr, weekend (DST ends Sun 5),
    # Easter Monday 6 Apr; Tue 7 Apr 09:00 AEST + 1 h = 10:00 AEST (UTC+10).
    Case(
        "dst-sydney-end-business-2h-across-easter-due-tue-1000-aest",
        "Australia/Sydney",
        BUSINESS,
        120,
        "2026-04-02T16:00+11:00",
        "2026-04-07T10:00+10:00",
    ),
    # Sun 25 Oct 2026 01:30 CEST = Sat 23:30 UTC; + 120 real minutes = 01:30 UTC = 02:30 CET,
    # the second 02:30 of that night.
    Case(
        "dst-berlin-fall-back-24x7-2h-filed-0130-cest-due-0230-cet",
        "Europe/Berlin",
        ALWAYS,
        120,
        "2026-10-25T01:30+02:00",
        "2026-10-25T02:30+01:00",
    ),
    # Fri 23 Oct 2026 16:00 CEST: 1 h to 17:00; clocks go back Sun 25 Oct;
    # Mon 26 Oct 09:00 CET + 7 h = 16:00 CET (UTC+1): 73 real hours after intake, not 72.
    Case(
        "dst-berlin-fall-back-business-1d-fri-1600-cest-due-mon-1600-cet",
        "Europe/Berlin",
        BUSINESS,
        480,
        "2026-10-23T16:00+02:00",
        "2026-10-26T16:00+01:00",
    ),
    # Thu 31 Dec 2026 14:00 CET (a working day): 3 h to 17:00; Fri 1 Jan 2027 holiday, weekend;
    # Mon 4 Jan 2027 09:00 + 5 h = 14:00 CET.
    Case(
        "new-year-berlin-business-8h-thu-31dec-1400-due-mon-4jan-1400",
        "Europe/Berlin",
        BUSINESS,
        480,
        "2026-12-31T14:00+01:00",
        "2027-01-04T14:00+01:00",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_deadline_matches_the_hand_worked_local_wall_time(case: Case) -> None:
    zone = ZONES[case.zone]
    filed, due = datetime.fromisoformat(case.filed), datetime.fromisoformat(case.due)
    # The hand-worked offsets are the zone's real ones at those instants.
    assert filed.astimezone(zone).utcoffset() == filed.utcoffset()
    assert due.astimezone(zone).utcoffset() == due.utcoffset()

    deadline = add_open_time(filed, timedelta(minutes=case.minutes), case.calendar, zone, HOLIDAYS[case.zone])

    assert deadline == due
    local_due = deadline.astimezone(zone)
    assert (local_due.replace(tzinfo=None), local_due.utcoffset()) == (
        due.replace(tzinfo=None),
        due.utcoffset(),
    )
    assert open_time_between(filed, deadline, case.calendar, case.zone, HOLIDAYS[case.zone]) == timedelta(
        minutes=case.minutes
    )


# The same quotes as sales would give them: target and holidays from the pinned entitlement.
QUOTES = [
    # (id, terms, severity, filed, due) — see the matching CASES rows for the arithmetic.
    (
        "premium-sev3-berlin-fri-1600-due-mon-1600",
        "Europe/Berlin",
        "DE",
        Tier.PREMIUM,
        Severity.MEDIUM,
        "2026-06-12T16:00+02:00",
        "2026-06-15T16:00+02:00",
    ),
    (
        "premium-sev3-berlin-christmas-eve-due-mon-28dec",
        "Europe/Berlin",
        "DE",
        Tier.PREMIUM,
        Severity.MEDIUM,
        "2026-12-24T10:00+01:00",
        "2026-12-28T10:00+01:00",
    ),
    (
        "premium-sev3-berlin-new-years-eve-due-mon-4jan",
        "Europe/Berlin",
        "DE",
        Tier.PREMIUM,
        Severity.MEDIUM,
        "2026-12-31T14:00+01:00",
        "2027-01-04T14:00+01:00",
    ),
    (
        "standard-sev2-new-york-before-thanksgiving-due-fri",
        "America/New_York",
        "US",
        Tier.STANDARD,
        Severity.HIGH,
        "2026-11-25T15:00-05:00",
        "2026-11-27T15:00-05:00",
    ),
    # Standard Sev 1 = 4 h extended: Fri 6 Mar 18:00 EST -> Mon 9 Mar 10:00 EDT.
    (
        "standard-sev1-new-york-dst-weekend-due-mon-1000-edt",
        "America/New_York",
        "US",
        Tier.STANDARD,
        Severity.CRITICAL,
        "2026-03-06T18:00-05:00",
        "2026-03-09T10:00-04:00",
    ),
    # Premium Sev 1 = 1 h 24x7: Sun 29 Mar 01:30 CET -> 03:30 CEST.
    (
        "premium-sev1-berlin-spring-forward-due-0330-cest",
        "Europe/Berlin",
        "DE",
        Tier.PREMIUM,
        Severity.CRITICAL,
        "2026-03-29T01:30+01:00",
        "2026-03-29T03:30+02:00",
    ),
]


@pytest.mark.parametrize(
    ("zone", "country", "tier", "severity", "filed", "due"),
    [row[1:] for row in QUOTES],
    ids=[row[0] for row in QUOTES],
)
def test_pinned_entitlement_gives_the_quoted_deadline(zone, country, tier, severity, filed, due) -> None:
    received = datetime.fromisoformat(filed)
    terms = ContractTerms(
        contract_id="ctr-quote",
        customer_id="quote",
        customer_name="Quote",
        tier=tier,
        product_type=ProductType.PLATFORM,
        timezone=zone,
        country=country,
    )
    entitlement = build_entitlement(terms, received_at=received)
    target = entitlement.response_target(severity)
    deadline = add_open_time(
        received,
        timedelta(minutes=target.minutes),
        target.calendar,
        entitlement.timezone,
        entitlement.holidays,
    )
    assert deadline == datetime.fromisoformat(due)


# --- refusals -------------------------------------------------------------------------------

AWARE = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
NAIVE = datetime(2026, 2, 10, 10, 0)


@pytest.mark.parametrize("calendar", [ALWAYS, EXTENDED, BUSINESS], ids=str)
def test_negative_duration_raises_calendar_error(calendar) -> None:
    with pytest.raises(CalendarError):
        add_open_time(AWARE, timedelta(minutes=-1), calendar, "Europe/Berlin", HOLIDAYS["Europe/Berlin"])


@pytest.mark.parametrize("calendar", [ALWAYS, EXTENDED, BUSINESS], ids=str)
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda cal: add_open_time(NAIVE, timedelta(hours=1), cal, "Europe/Berlin"), id="add_open_time"
        ),
        pytest.param(lambda cal: add_open_time(NAIVE, timedelta(0), cal, "Europe/Berlin"), id="add_zero"),
        pytest.param(
            lambda cal: open_time_between(NAIVE, AWARE, cal, "Europe/Berlin"), id="between-naive-start"
        ),
        pytest.param(
            lambda cal: open_time_between(AWARE, NAIVE, cal, "Europe/Berlin"), id="between-naive-end"
        ),
        pytest.param(lambda cal: is_open(NAIVE, cal, "Europe/Berlin"), id="is_open"),
    ],
)
def test_naive_datetimes_raise_calendar_error(call, calendar) -> None:
    with pytest.raises(CalendarError):
        call(calendar)


@pytest.mark.parametrize("calendar", [EXTENDED, BUSINESS], ids=str)
def test_open_windows_refuses_a_naive_start(calendar) -> None:
    with pytest.raises(CalendarError):
        next(open_windows(NAIVE, calendar, ZoneInfo("Europe/Berlin")))


def test_a_calendar_with_no_open_day_fails_loudly_instead_of_looping() -> None:
    every_day = [date(2026, 1, 1) + timedelta(days=n) for n in range(4 * 366)]
    with pytest.raises(CalendarError):
        add_open_time(AWARE, timedelta(hours=1), BUSINESS, "UTC", frozenset(every_day))
