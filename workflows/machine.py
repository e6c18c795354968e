"""The pure ticket state machine: state + event + now -> new state + effects.

No Temporal imports and no I/O. TicketWorkflow feeds it actions and timer firings, runs
the notifications it asks for, records the events it appends, and sleeps until
`next_wakeup`. The same functions answer what-if questions in tests and tools.

By concern: clocks.py (when deadlines fall), ladder.py (routing between levels), actions/
(one module per action), timeline.py (events and notices); this module is intake, time,
and the entry points.

Time comes first (DESIGN.md §5): an action at `now` is validated and applied only after
every deadline due at or before `now` has fired, so an outcome never depends on how late
the worker wakes up.

`apply` and `advance` leave the state they are given alone and return the new one in their
outcome (`advance` with nothing due returns the very state, unchanged), unless told
`in_place=True`: then they change the given state itself, without a copy, and `apply` skips
`validate` (permissions and the checks that need the time) and re-checks the state only, so
its caller validates first (the workflow in its validator or signal handler, what-if before
each action). `pin_holidays` always changes the state in place.

`open_ticket`, `apply` and `advance` told `texts=False` (what-if, which reads only what a run
comes to) make no notices and no event sentences for the deadlines: the outcome carries the
events as plain data and the pages triggered instead (timeline.py). The state is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from workflows import clocks, ladder
from workflows.actions.base import (
    ACTIONS,
    ActionModel,
    authorize,
    check,
    check_at,
    take,
)
from workflows.actions.incident import LinkIncident, link
from workflows.clocks import CLOCK_NAMES, RESPONSE_CLOCKS
from workflows.enums import (
    Audience,
    ClockKind,
    ClockStatus,
    EscalationTrigger,
    EventKind,
    OwningLine,
    PageAction,
    ProductType,
    Severity,
    TicketStatus,
)
from workflows.ladder import response_target
from workflows.models import SYSTEM, SlaClock, TicketOpened, TicketState
from workflows.policy import rules_for
from workflows.terms import HolidayYears
from workflows.timeline import Outcome, Step, headline, working_copy

__all__ = [
    "CLOCK_NAMES",
    "RESPONSE_CLOCKS",
    "HolidayYears",
    "Outcome",
    "Wakeup",
    "advance",
    "apply",
    "headline",
    "holidays_needed",
    "next_wakeup",
    "next_wakeup_at",
    "open_ticket",
    "pin_holidays",
    "response_target",
    "validate",
]


@dataclass(frozen=True)
class Wakeup:
    at: datetime
    summary: str


# --- Intake -----------------------------------------------------------------------------------


def open_ticket(opened: TicketOpened, *, texts: bool = True) -> Outcome:
    """The state of a ticket just filed, with its first clocks running."""
    ent = opened.entitlement
    partner_first = ent.product_type == ProductType.PARTNER_DELIVERED
    state = TicketState(
        ticket_id=opened.ticket_id,
        customer_id=opened.customer_id,
        title=opened.title,
        description=opened.description,
        product=opened.product,
        channel=opened.channel,
        category=opened.category,
        severity=opened.severity,
        status=TicketStatus.OPEN,
        level=1,
        owning_line=OwningLine.PARTNER if partner_first else OwningLine.CONNECTSOFT,
        received_at=opened.received_at,
        outage_started_at=opened.outage_started_at,
        outage_ended_at=opened.outage_ended_at,
        entitlement=ent,
    )
    step = Step(state, opened.received_at, texts=texts)
    line = "partner first line" if partner_first else "ConnectSoft"
    event = step.record(
        EventKind.OPENED,
        f"Ticket opened via {opened.channel.value} on {line}, "
        f"contract {ent.contract_id} r{ent.contract_revision}, policy {ent.policy_version}",
        actor=opened.reporter or opened.customer_id,
    )
    if opened.incident_id is not None:
        # An open incident's rule matched at intake: linked from the start (DESIGN.md §13).
        link(step, LinkIncident(actor=SYSTEM, incident_id=opened.incident_id))
    clock = clocks.start_clock(step, ClockKind.FIRST_RESPONSE, ent.response_target(opened.severity))
    resolution = ent.resolution_targets.get(str(int(opened.severity)))
    if resolution:
        clocks.start_clock(step, ClockKind.RESOLUTION, resolution)
    owner = Audience.PARTNER if partner_first else step.rules.level_audiences[1]
    ask = ""
    if texts:
        due = f"{clock.due_at:%Y-%m-%d %H:%M} UTC"
        # No SLA, no deadline: a best-effort time is only indicative (DESIGN.md §4).
        ask = f"respond by {due}" if clock.target.binding else f"indicative response time {due}, best effort"
    step.notify(event, owner, f"New ticket, {ask}: {state.title}")
    step.notify(event, Audience.CUSTOMER, f"We have your ticket: {state.title}")
    if state.severity == Severity.CRITICAL:
        if partner_first:
            ladder.partner_critical_response(step, actor="system")
        else:
            ladder.critical_response(step, actor="system")
    clock.level = state.level
    return step.outcome()


# --- Actions ----------------------------------------------------------------------------------


def validate(state: TicketState, action: ActionModel, now: datetime, *, timed: bool = True) -> None:
    """Raise Refusal when `action` cannot be applied at `now`. Never mutates.

    Checked against the ticket as of `now`, deadlines fired: an acknowledgement after the
    deadline is judged as the late response it is. With `timed`, also the checks that need
    `now` itself (outage times never in the future); `apply` repeats only the others, so an
    update replayed from history never meets a bound its validator did not.
    """
    at = acting_at(state, action, now)
    as_of = _as_of(state, at)
    authorize(as_of, action)
    check(as_of, action)
    if timed:
        check_at(as_of, action, now)


def _as_of(state: TicketState, now: datetime) -> TicketState:
    due = _next_due(state)
    if due is None or due > now:
        return state
    return advance(state, now).state


def apply(
    state: TicketState, action: ActionModel, now: datetime, *, in_place: bool = False, texts: bool = True
) -> Outcome:
    """Fire every deadline due by `now`, then validate and apply one action at `now`.

    The outcome carries the notifications of both: the deadlines' and the action's. A refused
    action raises Refusal and changes nothing; with `in_place`, the deadlines due by `now`
    have fired on `state` even so (they would have anyway).
    """
    if not in_place:
        validate(state, action, now)
        state = working_copy(state)
    step = Step(state, acting_at(state, action, now), texts=texts)
    _advance(step)
    check(step.state, action)
    take(step, action)
    return step.outcome()


def acting_at(state: TicketState, action: ActionModel, now: datetime) -> datetime:
    """When an action takes effect: `now`, or the earlier instant it claims (an incident's
    update, posted before the fan-out reached this ticket) if the ticket, brought up to `now`,
    has recorded nothing after it. Decided on the ticket as of `now`, so a worker that woke late
    decides as one on time; and never before anything on the timeline, so nothing is rewritten."""
    claimed_at = ACTIONS.of(action).claimed_at
    claimed = claimed_at(action) if claimed_at is not None else None
    if claimed is None or claimed >= now:
        return now
    last = _as_of(state, now).last_event_at
    return claimed if last is not None and last <= claimed else now


# --- Time -------------------------------------------------------------------------------------


def advance(state: TicketState, now: datetime, *, in_place: bool = False, texts: bool = True) -> Outcome:
    """Fire every warning and breach due at or before `now`, in time order."""
    at, first = _next_change(state)
    if at is None or at > now:
        return Outcome(state)  # nothing to fire: no copy, no change
    step = Step(state if in_place else working_copy(state), now, texts=texts)
    # In place, the first turn of `_advance` fires the deadline just found (a copy has other clocks).
    _advance(step, first if in_place else None)
    return step.outcome()


def _advance(step: Step, first: clocks.Due | None = None) -> None:
    """`first`: the earliest due of `step.state`'s clocks, when the caller has just found it."""
    state = step.state
    now = step.now
    due = first
    while True:
        if due is None:
            due = clocks.earliest_due(state.clocks)
        if due is None or due.at > now:
            break
        # Effects happen as of the instant they were due, even if the worker wakes late, but
        # never before what is already on the timeline (a severity raise can move a deadline
        # into the past: that miss is known only from the raise on).
        last = state.last_event_at
        at = max(due.at, last) if last is not None else due.at
        together = clocks.falling_due_with(due, state.clocks)
        step.now = at
        if not due.is_warning:
            _breach(step, together, at)
        elif at > due.at and due.clock.due_at <= now:
            # A warning overtaken by its own deadline says nothing the breach will not.
            for clock in together:
                clock.status = ClockStatus.WARNED
        else:
            _warn(step, together, at)
        due = None
    step.now = now
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        if now >= auto_close_at(state):
            for clock in state.clocks:
                clocks.stop(step, clock, ClockStatus.CANCELLED)
            state.status, state.closed_at = TicketStatus.CLOSED, now
            event = step.record(
                EventKind.CLOSED,
                f"Closed automatically {step.rules.auto_close_after_resolved_days} days after resolution",
            )
            step.settle_pages(event, PageAction.RESOLVE, step.rules.paged_audiences)


def auto_close_at(state: TicketState) -> datetime:
    assert state.resolved_at is not None
    days = rules_for(state.entitlement.policy_version).auto_close_after_resolved_days
    return state.resolved_at + timedelta(days=days)


def _next_due(state: TicketState) -> datetime | None:
    """The next instant at which `advance` would change the ticket."""
    return _next_change(state)[0]


def _next_change(state: TicketState) -> tuple[datetime | None, clocks.Due | None]:
    """`_next_due`, and the clock's due when that is a clock's warning or deadline."""
    if state.status == TicketStatus.CLOSED:
        return None, None
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        return auto_close_at(state), None
    due = clocks.earliest_due(state.clocks)
    return (due.at, due) if due else (None, None)


def next_wakeup(state: TicketState) -> Wakeup | None:
    """When the workflow must next wake on its own, and a sentence for the timer summary."""
    if state.status == TicketStatus.CLOSED:
        return None
    wakeup = _deadline_wakeup(state)
    renewal = _holiday_renewal(state)
    if renewal is not None and (wakeup is None or renewal.at < wakeup.at):
        return renewal
    return wakeup


def next_wakeup_at(state: TicketState) -> datetime | None:
    """`next_wakeup(state).at`, without the sentence (what-if asks it at every wakeup)."""
    if state.status == TicketStatus.CLOSED:
        return None
    at = _next_due(state)
    renewal = _holiday_renewal_at(state)
    if renewal is not None and (at is None or renewal < at):
        return renewal
    return at


def _deadline_wakeup(state: TicketState) -> Wakeup | None:
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        at = auto_close_at(state)
        return Wakeup(at, f"auto-close due {at:%Y-%m-%d %H:%M} UTC")
    due = clocks.earliest_due(state.clocks)
    if due is None:
        return None
    clock = due.clock
    # "Sev 1 first response due 2026-11-24 10:00 UTC (1 h 24x7)", as engineers read it in the UI.
    summary = (
        f"Sev {int(state.severity)} {CLOCK_NAMES[clock.kind]} due {clock.due_at:%Y-%m-%d %H:%M} UTC "
        f"({clock.target.label})"
    )
    if due.is_warning:
        summary += f": {round(state.entitlement.warn_ratio * 100)}% warning at {due.at:%H:%M} UTC"
    return Wakeup(due.at, summary)


def _clock_detail(together: list[SlaClock]) -> dict[str, str]:
    first = together[0]
    return {
        "clock": first.kind.value,
        "clocks": ",".join(c.kind.value for c in together),
        "line": first.owner.value,
    }


def _warn(step: Step, together: list[SlaClock], at: datetime) -> None:
    clock = together[0]
    for each in together:
        each.status = ClockStatus.WARNED
    summary = ""
    if step.texts:
        pct = round(step.state.entitlement.warn_ratio * 100)
        summary = (
            f"{CLOCK_NAMES[clock.kind].capitalize()} at {pct}% of {clock.target.label}: "
            f"due {clock.due_at:%Y-%m-%d %H:%M} UTC"
        )
    event = step.record(
        EventKind.SLA_WARNING,
        summary,
        at=at,
        **_clock_detail(together),
    )
    step.notify_level(event, f"SLA warning ({CLOCK_NAMES[clock.kind]}): {step.state.title}", clock.level)


def _breach(step: Step, together: list[SlaClock], at: datetime) -> None:
    state = step.state
    clock = together[0]
    for each in together:
        each.status, each.stopped_at = ClockStatus.BREACHED, at
    if clock.kind == ClockKind.PERIODIC_UPDATE:
        event = step.record(
            EventKind.UPDATE_OVERDUE,
            f"Customer update overdue ({clock.target.label})" if step.texts else "",
            at=at,
            **_clock_detail(together),
        )
        step.notify_level(event, f"Customer update overdue: {state.title}")
        clocks.start_clock(step, ClockKind.PERIODIC_UPDATE, clock.target, started_at=at)
        return
    # Each breach counts against the line that missed it (DESIGN.md §6).
    line = clock.owner
    if line == OwningLine.PARTNER:
        state.partner_sla_breached = True
    else:
        state.sla_breached = True
    summary = ""
    if step.texts:
        summary = (
            f"{CLOCK_NAMES[clock.kind].capitalize()} SLA breached by {line.in_sentence} "
            f"({clock.target.label}, due {clock.due_at:%Y-%m-%d %H:%M} UTC)"
        )
    event = step.record(
        EventKind.SLA_BREACHED,
        summary,
        at=at,
        **_clock_detail(together),
    )
    subject = f"SLA breached ({CLOCK_NAMES[clock.kind]}): {state.title}"
    climbs = (
        clock.kind in RESPONSE_CLOCKS
        and line == OwningLine.CONNECTSOFT
        and state.owning_line == OwningLine.CONNECTSOFT
    )
    max_level = state.entitlement.max_level
    if climbs and state.level >= max_level:
        # The top of the ladder: the top entitled level's lead, never a level above it.
        step.notify(
            event,
            ladder.top_of_ladder_audience(step),
            f"SLA breached at the top of the ladder: {state.title}",
        )
    step.notify_level(event, subject)
    if line == OwningLine.CONNECTSOFT and state.level in step.rules.page_breach_levels:
        step.page(event, step.rules.line_pages[line], f"SLA breached at L{state.level}: {state.title}")
    if climbs and state.level < max_level:
        ladder.escalate(step, state.level + 1, EscalationTrigger.SLA_BREACH, actor="system")


# --- Public holidays, pinned for as long as a clock can run ---------------------------------------


def _pinned_until(state: TicketState) -> date | None:
    ent = state.entitlement
    return ent.holidays_until if ent.country else None


_ZONE_DAYS = 2


def holidays_needed(state: TicketState, now: datetime) -> HolidayYears | None:
    """The years to pin so that every local day a clock may count on has its holidays.

    Pinned means: at least `holidays_ahead_days` ahead of `now` (so a clock resumed or started
    now counts on known days), and past every live deadline. None when nothing is missing.
    """
    until = _pinned_until(state)
    if until is None or state.status == TicketStatus.CLOSED:
        return None
    ent = state.entitlement
    ahead = rules_for(ent.policy_version).holidays_ahead_days
    # A later instant is never on an earlier local day: the last live deadline's day is the
    # latest day of any live deadline.
    latest = clocks.latest_live_due(state.clocks)
    # Far from the end of the pinned years, whatever the zone: an instant's local day is within
    # _ZONE_DAYS of its day where it is given (offsets are -12 h to +14 h).
    if now.date() + timedelta(days=ahead + _ZONE_DAYS) < until and (
        latest is None or latest.date() + timedelta(days=_ZONE_DAYS) < until
    ):
        return None
    zone = ZoneInfo(ent.timezone)
    horizon = now.astimezone(zone).date() + timedelta(days=ahead)
    if latest is not None:
        horizon = max(horizon, latest.astimezone(zone).date())
    if horizon < until:
        return None
    assert ent.country is not None
    # The subdivision is pinned with the country: later years are its holidays too (DESIGN.md §3).
    return HolidayYears(
        country=ent.country, first_year=until.year, stop_year=horizon.year + 1, subdivision=ent.subdivision
    )


def pin_holidays(state: TicketState, years: HolidayYears, dates: list[date], now: datetime) -> None:
    """Pin the public holidays of `years` (in place), and recompute the live clocks with them.

    Only days past the old pinned range change, so a deadline before it stays where it was.
    """
    ent = state.entitlement
    stop = date(years.stop_year, 1, 1)
    if ent.holidays_until is not None and stop <= ent.holidays_until:
        return
    pinned = sorted(set(ent.holidays) | set(dates))
    state.entitlement = ent.model_copy(update={"holidays": pinned, "holidays_until": stop})
    clocks.reschedule_live(Step(state, now))


def _holiday_renewal(state: TicketState) -> Wakeup | None:
    """When to pin the next year of holidays: `holidays_ahead_days` before the pinned ones end."""
    at = _holiday_renewal_at(state)
    if at is None:
        return None
    until = _pinned_until(state)
    assert until is not None
    country = state.entitlement.country
    return Wakeup(at, f"pin the {country} public holidays of {until.year} (pinned until {until:%Y-%m-%d})")


def _holiday_renewal_at(state: TicketState) -> datetime | None:
    until = _pinned_until(state)
    if until is None:
        return None
    ent = state.entitlement
    return _renewal_at(until, rules_for(ent.policy_version).holidays_ahead_days, ent.timezone)


@lru_cache(maxsize=1024)
def _renewal_at(until: date, ahead: int, timezone: str) -> datetime:
    """Midnight local time `ahead` days before `until`, in UTC (pure: cached by its inputs)."""
    day = until - timedelta(days=ahead)
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)
