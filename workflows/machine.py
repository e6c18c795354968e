"""The pure ticket state machine: state + event + now -> new state + effects.

No Temporal imports and no I/O. TicketWorkflow feeds it actions and timer firings, runs
the notifications it asks for, records the events it appends, and sleeps until
`next_wakeup`. The same functions answer what-if questions in tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from workflows import policy
from workflows.calendars import add_open_time, open_time_between
from workflows.permissions import Capability, can_reach, forbidden_reason
from workflows.models import (
    Acknowledge,
    Audience,
    ChangeSeverity,
    ClockKind,
    ClockStatus,
    Close,
    Comment,
    Escalate,
    EscalationTrigger,
    Handback,
    Handoff,
    Notification,
    OwningLine,
    ProductType,
    Reopen,
    Resolve,
    ResponseTarget,
    Resume,
    Severity,
    SlaClock,
    TicketAction,
    TicketEvent,
    TicketOpened,
    TicketState,
    TicketStatus,
    Tier,
    WaitOnCustomer,
)


class RefusalKind(StrEnum):
    CONFLICT = "Conflict"  # the action is fine, but not in this ticket's current state
    INVALID = "Invalid"  # the action is not allowed for this ticket at all
    FORBIDDEN = "Forbidden"  # the principal may not take this action on this ticket
    NOT_FOUND = "NotFound"  # the ticket is outside the principal's reach


class Refusal(Exception):
    """An action the machine will not take, with a sentence a person can act on."""

    def __init__(self, kind: RefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Outcome:
    state: TicketState
    notifications: list[Notification] = field(default_factory=list)


@dataclass(frozen=True)
class Wakeup:
    at: datetime
    summary: str


CLOSED_STATES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
RESPONSE_CLOCKS = (ClockKind.FIRST_RESPONSE, ClockKind.ESCALATION_ACK, ClockKind.HANDOFF_RESPONSE)
CLOCK_NAMES = {
    ClockKind.FIRST_RESPONSE: "first response",
    ClockKind.ESCALATION_ACK: "escalation acknowledgement",
    ClockKind.HANDOFF_RESPONSE: "ConnectSoft response to handoff",
    ClockKind.RESOLUTION: "resolution",
    ClockKind.PERIODIC_UPDATE: "customer update",
}


class _Step:
    """One transition in progress: a private copy of the state plus the effects so far."""

    def __init__(self, state: TicketState, now: datetime) -> None:
        self.state = state.model_copy(deep=True)
        self.now = now
        self.notifications: list[Notification] = []

    def outcome(self) -> Outcome:
        return Outcome(self.state, self.notifications)

    # --- effects ---------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        summary: str,
        *,
        actor: str = "system",
        at: datetime | None = None,
        **detail: str,
    ) -> TicketEvent:
        state = self.state
        event = TicketEvent(
            seq=state.next_seq,
            at=at or self.now,
            kind=kind,
            summary=summary,
            actor=actor,
            level=state.level,
            detail=detail,
        )
        state.next_seq += 1
        state.events.append(event)
        return event

    def notify(self, event: TicketEvent, audience: Audience, subject: str, *, page: bool = False) -> None:
        state = self.state
        self.notifications.append(
            Notification(
                key=f"{event.seq}-{audience.value}",
                ticket_id=state.ticket_id,
                audience=audience,
                subject=subject,
                body=f"{headline(state)}\n{event.summary}",
                page=page,
            )
        )

    def notify_level(self, event: TicketEvent, subject: str, level: int | None = None) -> None:
        self.notify(event, policy.LEVEL_AUDIENCE[level or self.state.level], subject)
        if self.state.owning_line == OwningLine.PARTNER or self.state.handoff_category:
            self.notify(event, Audience.PARTNER, subject)

    # --- clocks ----------------------------------------------------------------------------

    def due(self, target: ResponseTarget, started_at: datetime, extra_seconds: float = 0) -> datetime:
        ent = self.state.entitlement
        span = timedelta(minutes=target.minutes, seconds=extra_seconds)
        return add_open_time(started_at, span, target.calendar, ent.timezone, ent.holidays)

    def schedule(self, clock: SlaClock) -> None:
        """(Re)compute a clock's due and warning instants from its start and banked pause."""
        clock.due_at = self.due(clock.target, clock.started_at, clock.paused_seconds)
        if clock.target.binding and clock.target.minutes > 0:
            ratio = self.state.entitlement.warn_ratio
            warn_seconds = clock.target.minutes * 60 * ratio + clock.paused_seconds
            clock.warn_at = self.due(
                clock.target.model_copy(update={"minutes": 0}), clock.started_at, warn_seconds
            )
        else:
            clock.warn_at = None

    def start_clock(
        self,
        kind: ClockKind,
        target: ResponseTarget,
        *,
        started_at: datetime | None = None,
        level: int | None = None,
    ) -> SlaClock:
        for live in self.live(kind):
            live.status, live.stopped_at = ClockStatus.CANCELLED, self.now
        clock = SlaClock(
            kind=kind,
            target=target,
            started_at=started_at or self.now,
            due_at=self.now,
            level=level,
            owner=self.state.owning_line,
        )
        self.schedule(clock)
        self.state.clocks.append(clock)
        return clock

    def live(self, *kinds: ClockKind) -> list[SlaClock]:
        return [c for c in self.state.clocks if c.kind in kinds and c.is_live]

    def stop(self, clock: SlaClock, status: ClockStatus) -> None:
        if clock.is_live or clock.status == ClockStatus.PAUSED:
            clock.status, clock.stopped_at = status, self.now

    def pause(self, clock: SlaClock) -> None:
        if clock.is_live:
            clock.status, clock.paused_since = ClockStatus.PAUSED, self.now

    def unpause(self, clock: SlaClock, since: datetime) -> None:
        target = clock.target
        ent = self.state.entitlement
        banked = open_time_between(since, self.now, target.calendar, ent.timezone, ent.holidays)
        clock.paused_seconds += banked.total_seconds()
        clock.paused_since = None
        clock.status, clock.stopped_at = ClockStatus.RUNNING, None
        self.schedule(clock)

    # --- ladder ----------------------------------------------------------------------------

    def escalate(
        self, level: int, trigger: EscalationTrigger, *, actor: str, note: str | None = None
    ) -> None:
        state = self.state
        previous = state.level
        state.level = level
        who = policy.LEVEL_NAMES[level]
        summary = f"Escalated L{previous} -> L{level} ({who}): {trigger.value}"
        if note:
            summary += f". {note}"
        event = self.record(
            "escalated", summary, actor=actor, trigger=trigger.value, from_level=str(previous)
        )
        self.notify_level(event, f"Escalated to L{level}: {state.title}")
        target = response_target(state)
        self.start_clock(ClockKind.ESCALATION_ACK, target, level=level)

    def critical_response(self, actor: str) -> None:
        """Always escalate critical incidents immediately (DESIGN.md §5)."""
        state = self.state
        level = policy.intake_level(state.entitlement.tier, state.severity)
        level = min(level, state.entitlement.max_level)
        if level > state.level:
            state.level = level
        event = self.record(
            "critical_incident",
            f"Critical incident: routed to L{state.level} ({policy.LEVEL_NAMES[state.level]})",
            actor=actor,
            trigger=EscalationTrigger.CRITICAL_AT_INTAKE.value,
        )
        self.notify_level(event, f"Sev 1: {state.title}")
        if state.entitlement.tier == Tier.PREMIUM:
            self.notify(event, Audience.LEADERSHIP_L4, f"Sev 1 (Premium): {state.title}")
            self.notify(event, Audience.ON_CALL, f"Sev 1 production incident: {state.title}", page=True)


def headline(state: TicketState) -> str:
    """'[Sev 1][Premium] acme / identity: Login down', the static summary in the UI."""
    tier = state.entitlement.tier.label
    return f"[Sev {int(state.severity)}][{tier}] {state.customer_id} / {state.product.value}: {state.title}"


def response_target(state: TicketState, severity: Severity | None = None) -> ResponseTarget:
    ent = state.entitlement
    key = str(int(severity or state.severity))
    if state.handoff_category and state.owning_line == OwningLine.CONNECTSOFT and ent.handoff_targets:
        return ent.handoff_targets[key]
    return ent.response_targets[key]


# --- Intake -----------------------------------------------------------------------------------


def open_ticket(opened: TicketOpened) -> Outcome:
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
        entitlement=ent,
    )
    step = _Step(state, opened.received_at)
    state = step.state
    line = "partner first line" if partner_first else "ConnectSoft"
    event = step.record(
        "opened",
        f"Ticket opened via {opened.channel.value} on {line}, "
        f"contract {ent.contract_id} r{ent.contract_revision}, policy {ent.policy_version}",
        actor=opened.reporter or opened.customer_id,
    )
    clock = step.start_clock(ClockKind.FIRST_RESPONSE, ent.response_target(opened.severity))
    if ent.resolution_targets.get(str(int(opened.severity))):
        step.start_clock(ClockKind.RESOLUTION, ent.resolution_targets[str(int(opened.severity))])
    owner = Audience.PARTNER if partner_first else policy.LEVEL_AUDIENCE[1]
    step.notify(event, owner, f"New ticket, respond by {clock.due_at:%Y-%m-%d %H:%M} UTC: {state.title}")
    step.notify(event, Audience.CUSTOMER, f"We have your ticket: {state.title}")
    if state.severity == Severity.CRITICAL and not partner_first:
        step.critical_response(actor="system")
    clock.level = state.level
    return step.outcome()


# --- Actions ----------------------------------------------------------------------------------


ACTION_CAPABILITY: dict[type[TicketAction], Capability] = {
    Acknowledge: Capability.ACKNOWLEDGE,
    Comment: Capability.COMMENT,
    Escalate: Capability.ESCALATE,
    Handoff: Capability.HANDOFF,
    Handback: Capability.HANDBACK,
    ChangeSeverity: Capability.CHANGE_SEVERITY,
    WaitOnCustomer: Capability.WAIT_ON_CUSTOMER,
    Resume: Capability.RESUME,
    Resolve: Capability.RESOLVE,
    Reopen: Capability.REOPEN,
    Close: Capability.CLOSE,
}


def capability_of(action: TicketAction) -> Capability:
    if isinstance(action, Comment) and not action.public:
        return Capability.INTERNAL_NOTE
    return ACTION_CAPABILITY[type(action)]


def not_found(ticket_id: str) -> Refusal:
    return Refusal(
        RefusalKind.NOT_FOUND, f"No ticket {ticket_id!r}: check the id returned when it was filed."
    )


def check_permission(state: TicketState, action: TicketAction) -> None:
    """Reach first (404, so ids do not leak), then the permission table (403)."""
    actor = action.actor
    if not can_reach(actor, customer_id=state.customer_id, partner_id=state.entitlement.partner_id):
        raise not_found(state.ticket_id)
    reason = forbidden_reason(actor, capability_of(action), product_type=state.entitlement.product_type)
    if reason is not None:
        raise Refusal(RefusalKind.FORBIDDEN, reason)


def validate(state: TicketState, action: TicketAction, now: datetime) -> None:
    """Raise Refusal when `action` cannot be applied to `state`. Never mutates."""
    check_permission(state, action)
    conflict = RefusalKind.CONFLICT
    invalid = RefusalKind.INVALID
    status = state.status
    if status == TicketStatus.CLOSED:
        raise Refusal(conflict, "The ticket is closed; file a new ticket instead.")
    # Comment and Close are allowed in every state but closed, so they have no case here.
    match action:
        case Acknowledge():
            if status in CLOSED_STATES:
                raise Refusal(conflict, "The ticket is resolved; reopen it before acknowledging.")
            if state.acknowledged_at is not None and not _live(
                state, ClockKind.ESCALATION_ACK, ClockKind.HANDOFF_RESPONSE
            ):
                raise Refusal(
                    conflict, "The ticket is already acknowledged and no escalation awaits acknowledgement."
                )
        case Escalate(level=level, trigger=trigger):
            _check_escalation(state, level, trigger)
        case Handoff():
            if state.entitlement.product_type != ProductType.PARTNER_DELIVERED:
                raise Refusal(
                    invalid, "Only partner-delivered tickets are handed off; escalate this ticket instead."
                )
            if status in CLOSED_STATES:
                raise Refusal(conflict, "The ticket is resolved; reopen it before handing off.")
            if state.owning_line == OwningLine.CONNECTSOFT:
                raise Refusal(conflict, "ConnectSoft already owns this ticket; hand it back first.")
        case Handback():
            if state.owning_line != OwningLine.CONNECTSOFT or state.handoff_category is None:
                raise Refusal(conflict, "Only a ticket handed off to ConnectSoft can be handed back.")
        case ChangeSeverity(severity=severity):
            if status in CLOSED_STATES:
                raise Refusal(conflict, "The ticket is resolved; reopen it before changing severity.")
            if severity == state.severity:
                raise Refusal(conflict, f"The ticket is already Sev {int(severity)}.")
            if state.category in policy.LOW_ONLY_CATEGORIES and severity != Severity.LOW:
                raise Refusal(invalid, f"A {state.category.value.replace('_', ' ')} is Sev 4 at most.")
        case WaitOnCustomer():
            if status in CLOSED_STATES or status == TicketStatus.WAITING_ON_CUSTOMER:
                raise Refusal(
                    conflict,
                    f"The ticket is {status.value.replace('_', ' ')}; it cannot wait on the customer now.",
                )
        case Resume():
            if status != TicketStatus.WAITING_ON_CUSTOMER:
                raise Refusal(
                    conflict, "The ticket is not waiting on the customer; there is nothing to resume."
                )
        case Resolve():
            if status in CLOSED_STATES:
                raise Refusal(conflict, "The ticket is already resolved.")
        case Reopen():
            if status != TicketStatus.RESOLVED:
                raise Refusal(conflict, "Only a resolved ticket can be reopened.")


def _live(state: TicketState, *kinds: ClockKind) -> bool:
    return any(c.kind in kinds and c.is_live for c in state.clocks)


def _check_escalation(state: TicketState, level: int, trigger: EscalationTrigger) -> None:
    conflict, invalid = RefusalKind.CONFLICT, RefusalKind.INVALID
    ent = state.entitlement
    if state.status in CLOSED_STATES:
        raise Refusal(conflict, "The ticket is resolved; reopen it before escalating.")
    if trigger in policy.SYSTEM_TRIGGERS:
        raise Refusal(
            invalid,
            f"{trigger.value} is set by the system; name one of the escalation triggers of the policy.",
        )
    if level > ent.max_level:
        raise Refusal(
            invalid,
            f"A {ent.tier.label} contract is entitled to L1-L{ent.max_level}; "
            f"L{level} ({policy.LEVEL_NAMES[level]}) is for Premium (enterprise) customers only.",
        )
    if state.owning_line == OwningLine.PARTNER:
        raise Refusal(
            conflict, "The partner's first line owns this ticket: hand it off to ConnectSoft to escalate."
        )
    if level <= state.level:
        raise Refusal(conflict, f"The ticket is already at L{state.level}; escalate to a higher level.")
    trigger_level = policy.level_for_trigger(trigger)
    if trigger_level != level:
        allowed = (
            ", ".join(t.value for t in policy.ESCALATION_TRIGGERS[level])
            if level in policy.ESCALATION_TRIGGERS
            else "none"
        )
        raise Refusal(
            invalid,
            f"{trigger.value} is a Level {trigger_level} trigger; "
            f"to escalate to L{level} name one of: {allowed}.",
        )


def apply(state: TicketState, action: TicketAction, now: datetime) -> Outcome:
    """Validate and apply one action at `now`."""
    validate(state, action, now)
    step = _Step(state, now)
    state = step.state
    actor = str(action.actor)
    match action:
        case Acknowledge(note=note):
            _acknowledge(step, actor, note)
        case Comment(body=body, public=public):
            kind = "public comment" if public else "internal note"
            step.record("commented", f"{actor} added a {kind}: {body[:200]}", actor=actor)
            if public:
                for clock in step.live(ClockKind.PERIODIC_UPDATE):
                    step.stop(clock, ClockStatus.MET)
                _start_periodic_update(step)
        case Escalate(level=level, trigger=trigger, note=note):
            step.escalate(level, trigger, actor=actor, note=note)
        case Handoff(category=category, note=note):
            _handoff(step, actor, category.value, note)
            state.handoff_category = category
        case Handback(note=note):
            for clock in step.live(ClockKind.HANDOFF_RESPONSE, ClockKind.ESCALATION_ACK):
                step.stop(clock, ClockStatus.MET)
            state.owning_line = OwningLine.PARTNER
            event = step.record("handed_back", f"ConnectSoft handed back to the partner: {note}", actor=actor)
            step.notify(event, Audience.PARTNER, f"Handed back: {state.title}")
        case ChangeSeverity(severity=severity, reason=reason):
            _change_severity(step, actor, severity, reason)
        case WaitOnCustomer(note=note):
            state.status = TicketStatus.WAITING_ON_CUSTOMER
            for clock in step.live(ClockKind.RESOLUTION):
                step.pause(clock)
            for clock in step.live(ClockKind.PERIODIC_UPDATE):
                step.stop(clock, ClockStatus.CANCELLED)
            event = step.record(
                "waiting_on_customer", f"Waiting on the customer{': ' + note if note else ''}", actor=actor
            )
            step.notify(event, Audience.CUSTOMER, f"We need your input: {state.title}")
        case Resume(note=note):
            state.status = TicketStatus.ACKNOWLEDGED if state.acknowledged_at else TicketStatus.OPEN
            for clock in state.clocks:
                if clock.status == ClockStatus.PAUSED and clock.paused_since is not None:
                    step.unpause(clock, clock.paused_since)
            if state.acknowledged_at:
                _start_periodic_update(step)
            step.record("resumed", f"Work resumed{': ' + note if note else ''}", actor=actor)
        case Resolve(resolution=resolution):
            for clock in state.clocks:
                step.stop(
                    clock,
                    ClockStatus.MET if clock.kind != ClockKind.PERIODIC_UPDATE else ClockStatus.CANCELLED,
                )
            state.status, state.resolved_at = TicketStatus.RESOLVED, now
            event = step.record("resolved", f"Resolved: {resolution}", actor=actor)
            step.notify(event, Audience.CUSTOMER, f"Resolved: {state.title}")
        case Reopen(reason=reason):
            resolved_at = state.resolved_at or now
            for clock in state.clocks:
                if clock.kind == ClockKind.RESOLUTION and clock.stopped_at == resolved_at:
                    step.unpause(clock, resolved_at)
            state.status, state.resolved_at = TicketStatus.ACKNOWLEDGED, None
            _start_periodic_update(step)
            event = step.record("reopened", f"Reopened: {reason}", actor=actor)
            step.notify_level(event, f"Reopened: {state.title}")
        case Close(note=note):
            for clock in state.clocks:
                step.stop(clock, ClockStatus.CANCELLED)
            state.status, state.closed_at = TicketStatus.CLOSED, now
            step.record("closed", f"Closed{': ' + note if note else ''}", actor=actor)
    return step.outcome()


def _acknowledge(step: _Step, actor: str, note: str | None) -> None:
    state = step.state
    met = []
    for clock in step.live(*RESPONSE_CLOCKS):
        step.stop(clock, ClockStatus.MET)
        met.append(CLOCK_NAMES[clock.kind])
    first = state.acknowledged_at is None
    if first:
        state.acknowledged_at = step.now
        if state.status == TicketStatus.OPEN:
            state.status = TicketStatus.ACKNOWLEDGED
        _start_periodic_update(step)
    what = ", ".join(met) if met else "late first response"
    summary = f"Acknowledged by {actor} at L{state.level} ({what})"
    if note:
        summary += f": {note}"
    event = step.record("acknowledged", summary, actor=actor)
    if first:
        step.notify(event, Audience.CUSTOMER, f"We are working on it: {state.title}")


def _start_periodic_update(step: _Step) -> None:
    state = step.state
    target = state.entitlement.periodic_update.get(str(int(state.severity)))
    if target is not None and state.status not in CLOSED_STATES:
        step.start_clock(ClockKind.PERIODIC_UPDATE, target)
    else:
        for clock in step.live(ClockKind.PERIODIC_UPDATE):
            step.stop(clock, ClockStatus.CANCELLED)


def _handoff(step: _Step, actor: str, category: str, note: str | None) -> None:
    state = step.state
    state.owning_line = OwningLine.CONNECTSOFT
    state.level = max(state.level, 2)
    summary = f"Partner handed off to ConnectSoft second line ({category})"
    if note:
        summary += f": {note}"
    event = step.record("handed_off", summary, actor=actor, category=category)
    # Joint escalation: both lines hear of it.
    step.notify(event, policy.LEVEL_AUDIENCE[state.level], f"Partner handoff: {state.title}")
    step.notify(event, Audience.PARTNER, f"Handed off to ConnectSoft: {state.title}")
    target = state.entitlement.handoff_targets.get(str(int(state.severity)))
    if target is None:
        target = state.entitlement.response_target(state.severity)
    step.start_clock(ClockKind.HANDOFF_RESPONSE, target, level=state.level)
    if state.severity == Severity.CRITICAL:
        step.critical_response(actor="system")


def _change_severity(step: _Step, actor: str, severity: Severity, reason: str) -> None:
    state = step.state
    before = state.severity
    state.severity = severity
    ent = state.entitlement
    for clock in state.clocks:
        if clock.status not in (ClockStatus.RUNNING, ClockStatus.WARNED, ClockStatus.PAUSED):
            continue
        if clock.kind == ClockKind.RESOLUTION:
            new_target = ent.resolution_targets.get(str(int(severity)))
            if new_target is None:
                step.stop(clock, ClockStatus.CANCELLED)
                continue
        elif clock.kind == ClockKind.PERIODIC_UPDATE:
            continue
        elif clock.kind == ClockKind.FIRST_RESPONSE:
            new_target = ent.response_target(severity)
        else:
            new_target = response_target(state, severity)
        # Recomputed from the clock's original start; banked pause is kept.
        clock.target = new_target
        step.schedule(clock)
    if ent.resolution_targets.get(str(int(severity))) and not any(
        c.kind == ClockKind.RESOLUTION for c in state.clocks
    ):
        step.start_clock(
            ClockKind.RESOLUTION, ent.resolution_targets[str(int(severity))], started_at=state.received_at
        )
    if state.acknowledged_at and state.status != TicketStatus.WAITING_ON_CUSTOMER:
        _start_periodic_update(step)
    event = step.record(
        "severity_changed",
        f"Severity Sev {int(before)} -> Sev {int(severity)}: {reason}",
        actor=actor,
        from_severity=str(int(before)),
        to_severity=str(int(severity)),
    )
    step.notify_level(event, f"Severity now Sev {int(severity)}: {state.title}")
    if severity == Severity.CRITICAL and state.owning_line == OwningLine.CONNECTSOFT:
        step.critical_response(actor=actor)


# --- Time -------------------------------------------------------------------------------------


def advance(state: TicketState, now: datetime) -> Outcome:
    """Fire every warning and breach due at or before `now`, in time order."""
    step = _Step(state, now)
    state = step.state
    while True:
        due = _next_binding_instant(state)
        if due is None or due[0] > now:
            break
        at, clock, is_warning = due
        # Effects happen as of the instant they were due, even if the worker wakes late.
        step.now = at
        if is_warning:
            _warn(step, clock, at)
        else:
            _breach(step, clock, at)
    step.now = now
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        if now >= auto_close_at(state):
            for clock in state.clocks:
                step.stop(clock, ClockStatus.CANCELLED)
            state.status, state.closed_at = TicketStatus.CLOSED, now
            step.record(
                "closed",
                f"Closed automatically {policy.AUTO_CLOSE_AFTER_RESOLVED_DAYS} days after resolution",
            )
    return step.outcome()


def auto_close_at(state: TicketState) -> datetime:
    assert state.resolved_at is not None
    return state.resolved_at + timedelta(days=policy.AUTO_CLOSE_AFTER_RESOLVED_DAYS)


def _next_binding_instant(state: TicketState) -> tuple[datetime, SlaClock, bool] | None:
    best: tuple[datetime, SlaClock, bool] | None = None
    for clock in state.clocks:
        if not clock.is_live or not clock.target.binding:
            continue
        if clock.status == ClockStatus.RUNNING and clock.warn_at is not None and clock.warn_at < clock.due_at:
            candidate = (clock.warn_at, clock, True)
        else:
            candidate = (clock.due_at, clock, False)
        if best is None or candidate[0] < best[0]:
            best = candidate
    return best


def next_wakeup(state: TicketState) -> Wakeup | None:
    """When the workflow must next wake on its own, and a sentence for the timer summary."""
    if state.status == TicketStatus.CLOSED:
        return None
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        at = auto_close_at(state)
        return Wakeup(at, f"auto-close due {at:%Y-%m-%d %H:%M} UTC")
    due = _next_binding_instant(state)
    if due is None:
        return None
    at, clock, is_warning = due
    # "Sev 1 first response due 2026-11-24 10:00 UTC (1 h 24x7)", as engineers read it in the UI.
    summary = (
        f"Sev {int(state.severity)} {CLOCK_NAMES[clock.kind]} due {clock.due_at:%Y-%m-%d %H:%M} UTC "
        f"({clock.target.label})"
    )
    if is_warning:
        summary += f": {round(state.entitlement.warn_ratio * 100)}% warning at {at:%H:%M} UTC"
    return Wakeup(at, summary)


def _warn(step: _Step, clock: SlaClock, at: datetime) -> None:
    clock.status = ClockStatus.WARNED
    pct = round(step.state.entitlement.warn_ratio * 100)
    event = step.record(
        "sla_warning",
        f"{CLOCK_NAMES[clock.kind].capitalize()} at {pct}% of {clock.target.label}: "
        f"due {clock.due_at:%Y-%m-%d %H:%M} UTC",
        at=at,
        clock=clock.kind.value,
    )
    step.notify_level(event, f"SLA warning ({CLOCK_NAMES[clock.kind]}): {step.state.title}", clock.level)


def _breach(step: _Step, clock: SlaClock, at: datetime) -> None:
    state = step.state
    clock.status, clock.stopped_at = ClockStatus.BREACHED, at
    if clock.kind == ClockKind.PERIODIC_UPDATE:
        event = step.record(
            "update_overdue", f"Customer update overdue ({clock.target.label})", at=at, clock=clock.kind.value
        )
        step.notify_level(event, f"Customer update overdue: {state.title}")
        step.start_clock(ClockKind.PERIODIC_UPDATE, clock.target, started_at=at)
        return
    state.sla_breached = True
    event = step.record(
        "sla_breached",
        f"{CLOCK_NAMES[clock.kind].capitalize()} SLA breached "
        f"({clock.target.label}, due {clock.due_at:%Y-%m-%d %H:%M} UTC)",
        at=at,
        clock=clock.kind.value,
    )
    step.notify_level(event, f"SLA breached ({CLOCK_NAMES[clock.kind]}): {state.title}")
    if clock.kind in RESPONSE_CLOCKS and state.owning_line == OwningLine.CONNECTSOFT:
        if state.level < state.entitlement.max_level:
            step.escalate(state.level + 1, EscalationTrigger.SLA_BREACH, actor="system")
        else:
            step.notify(
                event, Audience.LEADERSHIP_L4, f"SLA breached at the top of the ladder: {state.title}"
            )
