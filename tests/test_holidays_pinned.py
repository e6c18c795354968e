"""Public holidays stay pinned for as long as any clock of a ticket can run.

Intake pins two years. The workflow pins the next year (the `public_holidays` activity, whose
answer is in the history) a year before the pinned ones run out, and at once when a deadline
would fall past them, so no clock ever counts a holiday as an open day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.factories import CALENDAR_HOURS, DEMO_TERMS, SUPPORT, close_when_done, engineer, opened_ticket
from tests.fixtures_temporal import WorkerFactory, skip_to
from workflows import calendars, machine
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.resume import Resume
from workflows.actions.wait_on_customer import WaitOnCustomer
from workflows.entitlement import public_holidays
from workflows.enums import ClockKind, ClockStatus, CoverageCalendar
from workflows.models import TicketState
from workflows.terms import HolidayYears, ResponseTarget, TargetOverrides
from workflows.ticket import TicketWorkflow

# The calendar math on the current policy's opening hours (a ticket passes its pinned ones).
add_open_time = partial(calendars.add_open_time, hours=CALENDAR_HOURS)
open_time_between = partial(calendars.open_time_between, hours=CALENDAR_HOURS)

NEW_YORK = ZoneInfo("America/New_York")
FILED = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
L1 = engineer(1, "ines")


def us_holidays(*years: int) -> list[date]:
    return public_holidays("US", range(min(years), max(years) + 1))


def globex_with_resolution(business_days: int) -> TargetOverrides:
    target = ResponseTarget(
        minutes=business_days * 480,
        calendar=CoverageCalendar.BUSINESS,
        label=f"{business_days} business days",
    )
    return TargetOverrides(resolution={"4": target})


def pin_as_the_workflow_does(state: TicketState, now: datetime) -> None:
    """What TicketWorkflow does after every step: pin what is missing, from the package."""
    while (needed := machine.holidays_needed(state, now)) is not None:
        dates = public_holidays(needed.country, range(needed.first_year, needed.stop_year))
        machine.pin_holidays(state, needed, dates, now)


def test_intake_pins_two_years_of_holidays_and_says_until_when() -> None:
    pinned = opened_ticket("globex", 4, FILED).entitlement
    assert pinned.holidays_until == date(2028, 1, 1)
    assert pinned.holidays == us_holidays(2026, 2027)
    # No country, no holidays: nothing to pin, ever.
    assert opened_ticket("initech", 4, FILED).entitlement.holidays_until is None


def test_a_ticket_with_no_live_clock_wakes_a_year_before_its_holidays_run_out() -> None:
    state = machine.open_ticket(opened_ticket("globex", 4, FILED)).state
    state = machine.apply(state, Acknowledge(actor=L1), FILED + timedelta(minutes=5)).state
    assert not any(clock.is_live for clock in state.clocks)

    wakeup = machine.next_wakeup(state)

    renewal = datetime(2027, 1, 1, tzinfo=NEW_YORK)  # 365 days before 1 January 2028
    assert wakeup is not None and wakeup.at == renewal
    assert wakeup.summary == "pin the US public holidays of 2028 (pinned until 2028-01-01)"
    assert machine.holidays_needed(state, renewal - timedelta(seconds=1)) is None
    assert machine.holidays_needed(state, renewal) == HolidayYears(
        country="US", first_year=2028, stop_year=2029
    )
    pin_as_the_workflow_does(state, renewal)
    assert state.entitlement.holidays_until == date(2029, 1, 1)
    assert state.entitlement.holidays == us_holidays(2026, 2027, 2028)
    wakeup = machine.next_wakeup(state)
    assert wakeup is not None and wakeup.at == datetime(2028, 1, 2, tzinfo=NEW_YORK)  # 2028 is a leap year


def test_a_deadline_past_the_pinned_years_counts_on_the_holidays_pinned_for_it() -> None:
    terms = DEMO_TERMS["globex"].model_copy(update={"overrides": globex_with_resolution(400)})
    state = machine.open_ticket(opened_ticket("globex", 4, FILED, terms=terms)).state
    resolution = state.clock(ClockKind.RESOLUTION)
    assert resolution is not None
    provisional = resolution.due_at
    assert provisional.year == 2028  # past 1 January 2028, so without 2028's holidays

    needed = machine.holidays_needed(state, FILED)
    assert needed == HolidayYears(country="US", first_year=2028, stop_year=2029)
    pin_as_the_workflow_does(state, FILED)

    truth = add_open_time(
        FILED,
        timedelta(hours=400 * 8),
        CoverageCalendar.BUSINESS,
        "America/New_York",
        us_holidays(2026, 2029),
    )
    assert resolution.due_at == truth
    # The 2028 holidays before it (New Year's Day observed, MLK Day, ...) moved it later.
    assert resolution.due_at > provisional
    # Nothing before the old pinned range moved: the first response is where it was.
    assert state.clock(ClockKind.FIRST_RESPONSE) == machine.open_ticket(
        opened_ticket("globex", 4, FILED, terms=terms)
    ).state.clock(ClockKind.FIRST_RESPONSE)


def test_a_resolution_clock_paused_for_two_years_banks_only_open_days() -> None:
    terms = DEMO_TERMS["globex"].model_copy(update={"overrides": globex_with_resolution(10)})
    state = machine.open_ticket(opened_ticket("globex", 4, FILED, terms=terms)).state
    state = machine.apply(state, Acknowledge(actor=L1), FILED + timedelta(minutes=5)).state
    paused_at = FILED + timedelta(hours=1)
    state = machine.apply(state, WaitOnCustomer(actor=L1), paused_at).state
    back = datetime(2029, 3, 6, 15, 0, tzinfo=UTC)

    # The workflow sleeps until each renewal, pins the next year, and sleeps again.
    while (wakeup := machine.next_wakeup(state)) is not None and wakeup.at <= back:
        state = machine.advance(state, wakeup.at).state
        pin_as_the_workflow_does(state, wakeup.at)
    # Renewed on 1 January 2027, 2 January 2028 and 1 January 2029.
    assert state.entitlement.holidays_until == date(2031, 1, 1)
    state = machine.apply(state, Resume(actor=SUPPORT), back).state

    resolution = state.clock(ClockKind.RESOLUTION)
    assert resolution is not None and resolution.status == ClockStatus.RUNNING
    holidays = us_holidays(2026, 2029)
    banked = open_time_between(paused_at, back, CoverageCalendar.BUSINESS, "America/New_York", holidays)
    assert resolution.paused_seconds == banked.total_seconds()
    truth = add_open_time(
        FILED, timedelta(hours=80) + banked, CoverageCalendar.BUSINESS, "America/New_York", holidays
    )
    assert resolution.due_at == truth


async def test_the_workflow_pins_next_years_holidays_a_year_before_they_run_out(
    time_skipping_env: WorkflowEnvironment, ticket_worker: WorkerFactory
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket("globex", 4, received)
        until = opened.entitlement.holidays_until
        assert until is not None
        handle = await tickets.start(opened)
        await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=L1))

        renewal = datetime.combine(until - timedelta(days=365), datetime.min.time(), NEW_YORK)
        await skip_to(env, renewal + timedelta(minutes=1))

        state = await handle.query(TicketWorkflow.state)
        assert state.entitlement.holidays_until == date(until.year + 1, 1, 1)
        assert set(us_holidays(until.year)) <= set(state.entitlement.holidays)
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in (await handle.fetch_history()).events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        assert scheduled.count("public_holidays") == 1
        await close_when_done(handle)
