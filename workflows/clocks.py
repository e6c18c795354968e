"""SLA clocks: when each one warns and falls due, which fall due together, and how a step
starts, stops, pauses and resumes them.

Pure: no Temporal, no I/O. Arithmetic over a clock, the ticket's entitlement and the calendar
hours its policy version pinned. The events and notices a deadline raises are the machine's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from workflows.calendars import CalendarHours, add_open_time, add_open_times, open_time_between
from workflows.enums import CLOSED_STATES, ClockKind, ClockStatus
from workflows.models import LIVE_STATUSES, SlaClock, TicketState
from workflows.terms import Entitlement, ResponseTarget
from workflows.timeline import Step

# Clocks that a person's acknowledgement stops: each is one line's response.
RESPONSE_CLOCKS = (ClockKind.FIRST_RESPONSE, ClockKind.ESCALATION_ACK, ClockKind.HANDOFF_RESPONSE)

CLOCK_NAMES = {
    ClockKind.FIRST_RESPONSE: "first response",
    ClockKind.ESCALATION_ACK: "escalation acknowledgement",
    ClockKind.HANDOFF_RESPONSE: "ConnectSoft response to handoff",
    ClockKind.RESOLUTION: "resolution",
    ClockKind.PERIODIC_UPDATE: "customer update",
}


class Due(NamedTuple):
    """The next instant a clock needs attention: its warning or its deadline. (A named tuple:
    one is made per scan of the clocks, several times per wakeup, and a tuple is made fastest.)"""

    at: datetime
    clock: SlaClock
    is_warning: bool


def due_after(
    ent: Entitlement,
    target: ResponseTarget,
    started_at: datetime,
    extra_seconds: float,
    hours: CalendarHours,
) -> datetime:
    span = timedelta(minutes=target.minutes, seconds=extra_seconds)
    return add_open_time(started_at, span, target.calendar, ent.timezone, ent.holidays, hours=hours)


def schedule(clock: SlaClock, ent: Entitlement, hours: CalendarHours) -> None:
    """(Re)compute a clock's due and warning instants from its start and banked pause."""
    target = clock.target
    if target.binding and target.minutes > 0:
        span = timedelta(minutes=target.minutes, seconds=clock.paused_seconds)
        warn_span = timedelta(seconds=target.minutes * 60 * ent.warn_ratio + clock.paused_seconds)
        clock.warn_at, clock.due_at = add_open_times(
            clock.started_at, (warn_span, span), target.calendar, ent.timezone, ent.holidays, hours=hours
        )
    else:
        clock.due_at = due_after(ent, target, clock.started_at, clock.paused_seconds, hours)
        clock.warn_at = None


def bank_pause(
    clock: SlaClock, ent: Entitlement, since: datetime, until: datetime, hours: CalendarHours
) -> None:
    """Resume a paused clock at `until`, banking the open time it spent paused since `since`."""
    target = clock.target
    banked = open_time_between(since, until, target.calendar, ent.timezone, ent.holidays, hours=hours)
    clock.paused_seconds += banked.total_seconds()
    clock.paused_since = None
    clock.status, clock.stopped_at = ClockStatus.RUNNING, None
    schedule(clock, ent, hours)


def next_due(clock: SlaClock) -> Due | None:
    """A live binding clock's next warning or deadline; None for any other clock."""
    if not clock.is_live or not clock.target.binding:
        return None
    if clock.status == ClockStatus.RUNNING and clock.warn_at is not None and clock.warn_at < clock.due_at:
        return Due(clock.warn_at, clock, True)
    return Due(clock.due_at, clock, False)


def earliest_due(clocks: list[SlaClock]) -> Due | None:
    """The first warning or deadline among `clocks`; ties go to the older clock.

    `next_due` of each clock, inlined: this runs several times per wakeup over every clock.
    """
    best: SlaClock | None = None
    best_at: datetime | None = None
    best_warning = False
    for clock in clocks:
        status = clock.status
        if status not in LIVE_STATUSES or not clock.target.binding:
            continue
        at, warn_at = clock.due_at, clock.warn_at
        if status == ClockStatus.RUNNING and warn_at is not None and warn_at < at:
            at, warning = warn_at, True
        else:
            warning = False
        if best_at is None or at < best_at:
            best, best_at, best_warning = clock, at, warning
    if best is None or best_at is None:
        return None
    return Due(best_at, best, best_warning)


def latest_live_due(clocks: list[SlaClock]) -> datetime | None:
    """The last deadline of a live clock, binding or not."""
    latest: datetime | None = None
    for clock in clocks:
        if clock.status in LIVE_STATUSES and (latest is None or clock.due_at > latest):
            latest = clock.due_at
    return latest


def falling_due_with(due: Due, clocks: list[SlaClock]) -> list[SlaClock]:
    """The clocks that one miss trips at once: `due.clock` first.

    Response clocks of one line falling due at the same instant are the same miss (nobody of
    that line answered in time), say the first response and the acknowledgement of the level
    a Sev 1 was routed to at intake. They warn and breach together, as one event.
    """
    first = due.clock
    if first.kind not in RESPONSE_CLOCKS:
        return [first]
    together = [first]
    for clock in clocks:
        if clock is first or clock.kind not in RESPONSE_CLOCKS or clock.owner != first.owner:
            continue
        other = next_due(clock)
        if other is not None and (other.at, other.is_warning) == (due.at, due.is_warning):
            together.append(clock)
    return together


# --- A step's clocks --------------------------------------------------------------------------


def start_clock(
    step: Step,
    kind: ClockKind,
    target: ResponseTarget,
    *,
    started_at: datetime | None = None,
    level: int | None = None,
) -> SlaClock:
    # One live clock per kind: a new one supersedes the old, so one miss is one breach.
    for superseded in live(step.state, kind):
        superseded.status, superseded.stopped_at = ClockStatus.CANCELLED, step.now
    clock = SlaClock(
        kind=kind,
        target=target,
        started_at=started_at or step.now,
        due_at=step.now,
        level=level,
        owner=step.state.owning_line,
    )
    schedule(clock, step.state.entitlement, step.rules.calendar_hours)
    step.state.clocks.append(clock)
    return clock


def live(state: TicketState, *kinds: ClockKind) -> list[SlaClock]:
    return [c for c in state.clocks if c.status in LIVE_STATUSES and c.kind in kinds]


def stop(step: Step, clock: SlaClock, status: ClockStatus) -> None:
    # Only an undecided clock stops: a breach is permanent, whatever comes after it.
    if clock.is_live or clock.status == ClockStatus.PAUSED:
        clock.status, clock.stopped_at = status, step.now


def pause(step: Step, clock: SlaClock) -> None:
    if clock.is_live:
        clock.status, clock.paused_since = ClockStatus.PAUSED, step.now


def unpause(step: Step, clock: SlaClock, since: datetime) -> None:
    bank_pause(clock, step.state.entitlement, since, step.now, step.rules.calendar_hours)


def start_periodic_update(step: Step) -> None:
    """The customer-update clock of an open ticket, if its entitlement has one (DESIGN.md §4)."""
    state = step.state
    target = state.entitlement.periodic_update.get(str(int(state.severity)))
    if target is not None and state.status not in CLOSED_STATES:
        start_clock(step, ClockKind.PERIODIC_UPDATE, target)
    else:
        for clock in live(state, ClockKind.PERIODIC_UPDATE):
            stop(step, clock, ClockStatus.CANCELLED)


def reschedule_live(step: Step) -> None:
    """Recompute every live clock, e.g. once more public holidays are pinned."""
    for clock in step.state.clocks:
        if clock.status in LIVE_STATUSES:
            schedule(clock, step.state.entitlement, step.rules.calendar_hours)
