"""SLA clocks: when each one warns and falls due, and which fall due together.

Pure arithmetic over a clock and the ticket's entitlement: no Temporal, no I/O. The machine
owns the effects (events, notifications, escalation); this module only answers "when".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.calendars import add_open_time, open_time_between
from workflows.models import ClockKind, ClockStatus, Entitlement, ResponseTarget, SlaClock

# Clocks that a person's acknowledgement stops: each is one line's response.
RESPONSE_CLOCKS = (ClockKind.FIRST_RESPONSE, ClockKind.ESCALATION_ACK, ClockKind.HANDOFF_RESPONSE)

CLOCK_NAMES = {
    ClockKind.FIRST_RESPONSE: "first response",
    ClockKind.ESCALATION_ACK: "escalation acknowledgement",
    ClockKind.HANDOFF_RESPONSE: "ConnectSoft response to handoff",
    ClockKind.RESOLUTION: "resolution",
    ClockKind.PERIODIC_UPDATE: "customer update",
}


@dataclass(frozen=True)
class Due:
    """The next instant a clock needs attention: its warning or its deadline."""

    at: datetime
    clock: SlaClock
    is_warning: bool


def due_after(
    ent: Entitlement, target: ResponseTarget, started_at: datetime, extra_seconds: float = 0
) -> datetime:
    span = timedelta(minutes=target.minutes, seconds=extra_seconds)
    return add_open_time(started_at, span, target.calendar, ent.timezone, ent.holidays)


def schedule(clock: SlaClock, ent: Entitlement) -> None:
    """(Re)compute a clock's due and warning instants from its start and banked pause."""
    clock.due_at = due_after(ent, clock.target, clock.started_at, clock.paused_seconds)
    if clock.target.binding and clock.target.minutes > 0:
        warn_seconds = clock.target.minutes * 60 * ent.warn_ratio + clock.paused_seconds
        clock.warn_at = due_after(
            ent, clock.target.model_copy(update={"minutes": 0}), clock.started_at, warn_seconds
        )
    else:
        clock.warn_at = None


def bank_pause(clock: SlaClock, ent: Entitlement, since: datetime, until: datetime) -> None:
    """Resume a paused clock at `until`, banking the open time it spent paused since `since`."""
    target = clock.target
    banked = open_time_between(since, until, target.calendar, ent.timezone, ent.holidays)
    clock.paused_seconds += banked.total_seconds()
    clock.paused_since = None
    clock.status, clock.stopped_at = ClockStatus.RUNNING, None
    schedule(clock, ent)


def next_due(clock: SlaClock) -> Due | None:
    """A live binding clock's next warning or deadline; None for any other clock."""
    if not clock.is_live or not clock.target.binding:
        return None
    if clock.status == ClockStatus.RUNNING and clock.warn_at is not None and clock.warn_at < clock.due_at:
        return Due(clock.warn_at, clock, True)
    return Due(clock.due_at, clock, False)


def earliest_due(clocks: list[SlaClock]) -> Due | None:
    """The first warning or deadline among `clocks`; ties go to the older clock."""
    best: Due | None = None
    for clock in clocks:
        due = next_due(clock)
        if due is not None and (best is None or due.at < best.at):
            best = due
    return best


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
