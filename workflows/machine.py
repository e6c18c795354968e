"""The pure ticket state machine: state + event + now -> new state + effects.

No Temporal imports and no I/O. TicketWorkflow feeds it actions and timer firings, runs
the notifications it asks for, records the events it appends, and sleeps until
`next_wakeup`. The same functions answer what-if questions in tests and tools.

Time comes first (DESIGN.md §5): an action at `now` is validated and applied only after
every deadline due at or before `now` has fired, so an outcome never depends on how late
the worker wakes up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from workflows import clocks, policy
from workflows.clocks import CLOCK_NAMES, RESPONSE_CLOCKS
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
    HandoffCategory,
    Notification,
    OwningLine,
    Principal,
    ProductType,
    Reopen,
    Resolve,
    ResponseTarget,
    Resume,
    Role,
    Severity,
    SlaClock,
    TicketAction,
    TicketEvent,
    TicketOpened,
    TicketState,
    TicketStatus,
    WaitOnCustomer,
)
from workflows.permissions import Capability, can_reach, forbidden_reason


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
LINE_NAMES = {OwningLine.CONNECTSOFT: "ConnectSoft", OwningLine.PARTNER: "the partner's first line"}
LINE_SUBJECTS = {OwningLine.CONNECTSOFT: "ConnectSoft", OwningLine.PARTNER: "The partner's first line"}


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
        if audience == Audience.CUSTOMER and state.entitlement.product_type == ProductType.PARTNER_DELIVERED:
            # The partner owns customer-facing communication (DESIGN.md §6).
            audience = Audience.PARTNER
        key = f"{event.seq}-{audience.value}"
        if any(note.key == key for note in self.notifications):
            return  # one notice per audience per event
        self.notifications.append(
            Notification(
                key=key,
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

    def start_clock(
        self,
        kind: ClockKind,
        target: ResponseTarget,
        *,
        started_at: datetime | None = None,
        level: int | None = None,
    ) -> SlaClock:
        # One live clock per kind: a new one supersedes the old, so one miss is one breach.
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
        clocks.schedule(clock, self.state.entitlement)
        self.state.clocks.append(clock)
        return clock

    def live(self, *kinds: ClockKind) -> list[SlaClock]:
        return [c for c in self.state.clocks if c.kind in kinds and c.is_live]

    def stop(self, clock: SlaClock, status: ClockStatus) -> None:
        # Only an undecided clock stops: a breach is permanent, whatever comes after it.
        if clock.is_live or clock.status == ClockStatus.PAUSED:
            clock.status, clock.stopped_at = status, self.now

    def pause(self, clock: SlaClock) -> None:
        if clock.is_live:
            clock.status, clock.paused_since = ClockStatus.PAUSED, self.now

    def unpause(self, clock: SlaClock, since: datetime) -> None:
        clocks.bank_pause(clock, self.state.entitlement, since, self.now)

    # --- ladder ----------------------------------------------------------------------------

    def start_acknowledgement_clock(self) -> None:
        """The level a ticket was just routed to must acknowledge within the response target."""
        state = self.state
        self.start_clock(ClockKind.ESCALATION_ACK, response_target(state), level=state.level)

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
        self.start_acknowledgement_clock()

    def critical_response(self, actor: str, *, start_ack: bool = True) -> None:
        """Always escalate critical incidents immediately (DESIGN.md §5)."""
        state = self.state
        ent = state.entitlement
        level = min(policy.intake_level(ent.tier, state.severity), ent.max_level)
        routed = level > state.level
        if routed:
            state.level = level
        event = self.record(
            "critical_incident",
            f"Critical incident: routed to L{state.level} ({policy.LEVEL_NAMES[state.level]})",
            actor=actor,
            trigger=EscalationTrigger.CRITICAL_AT_INTAKE.value,
            line=OwningLine.CONNECTSOFT.value,
        )
        self.notify_level(event, f"Sev 1: {state.title}")
        if ent.max_level >= 4:  # Premium (enterprise): leadership hears of it, on-call is paged
            self.notify(event, Audience.LEADERSHIP_L4, f"Sev 1 ({ent.tier.label}): {state.title}")
            self.notify(event, Audience.ON_CALL, f"Sev 1 production incident: {state.title}", page=True)
        if routed and start_ack:
            self.start_acknowledgement_clock()

    def partner_critical_response(self, actor: str) -> None:
        """A Sev 1 on the partner's first line pages the partner; ConnectSoft L2 is told."""
        state = self.state
        event = self.record(
            "critical_incident",
            "Critical incident on the partner's first line: partner on-call paged, "
            "ConnectSoft L2 given a heads-up",
            actor=actor,
            trigger=EscalationTrigger.CRITICAL_AT_INTAKE.value,
            line=OwningLine.PARTNER.value,
        )
        self.notify(event, Audience.PARTNER_ON_CALL, f"Sev 1 production incident: {state.title}", page=True)
        self.notify(event, Audience.SUPPORT_L2, f"Heads-up, Sev 1 on a partner ticket: {state.title}")


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
    if state.severity == Severity.CRITICAL:
        if partner_first:
            step.partner_critical_response(actor="system")
        else:
            step.critical_response(actor="system")
    clock.level = state.level
    return step.outcome()


# --- Who may act ------------------------------------------------------------------------------


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


def acknowledging_lines(actor: Principal) -> frozenset[OwningLine]:
    """Whose response clocks an actor's acknowledgement stops: its own line's, or every line's."""
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return frozenset(OwningLine)
    return frozenset({actor.line}) if actor.line is not None else frozenset()


def answering_line(state: TicketState, actor: Principal) -> OwningLine:
    """The line an acknowledgement or comment speaks for; admins and the system speak for the owner."""
    if actor.role in (Role.ADMIN, Role.SYSTEM) or actor.line is None:
        return state.owning_line
    return actor.line


def speaks_for_owning_line(state: TicketState, actor: Principal) -> bool:
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return True
    return actor.line == state.owning_line


def clocks_acknowledged_by(state: TicketState, actor: Principal) -> list[SlaClock]:
    lines = acknowledging_lines(actor)
    return [c for c in state.clocks if c.kind in RESPONSE_CLOCKS and c.is_live and c.owner in lines]


def binding_clocks_to_stop(state: TicketState) -> list[SlaClock]:
    """Undecided SLA clocks that closing the ticket would stop (periodic updates aside)."""
    return [
        c
        for c in state.clocks
        if c.kind != ClockKind.PERIODIC_UPDATE
        and c.target.binding
        and (c.is_live or c.status == ClockStatus.PAUSED)
    ]


# --- Validation -------------------------------------------------------------------------------


def validate(state: TicketState, action: TicketAction, now: datetime) -> None:
    """Raise Refusal when `action` cannot be applied at `now`. Never mutates.

    Checked against the ticket as of `now`, deadlines fired: an acknowledgement after the
    deadline is judged as the late response it is.
    """
    _validate(_as_of(state, now), action)


def _as_of(state: TicketState, now: datetime) -> TicketState:
    due = _next_due(state)
    if due is None or due > now:
        return state
    return advance(state, now).state


def _validate(state: TicketState, action: TicketAction) -> None:
    check_permission(state, action)
    conflict = RefusalKind.CONFLICT
    invalid = RefusalKind.INVALID
    status = state.status
    if status == TicketStatus.CLOSED:
        raise Refusal(conflict, "The ticket is closed; file a new ticket instead.")
    # Comment is allowed in every state but closed, so it has no case here.
    match action:
        case Acknowledge():
            _check_acknowledgement(state, action.actor)
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
        case Close(note=note):
            undecided = list(dict.fromkeys(CLOCK_NAMES[c.kind] for c in binding_clocks_to_stop(state)))
            if undecided and not (note and note.strip()):
                clocks_are = f"{' and '.join(undecided)} clock{'s are' if len(undecided) > 1 else ' is'}"
                raise Refusal(
                    invalid,
                    f"The {clocks_are} still open; give the reason for closing the ticket before "
                    "it is met or breached in the note.",
                )


def _check_acknowledgement(state: TicketState, actor: Principal) -> None:
    if state.status in CLOSED_STATES:
        raise Refusal(RefusalKind.CONFLICT, "The ticket is resolved; reopen it before acknowledging.")
    if actor.role == Role.SUPPORT and actor.level is not None and actor.level < state.level:
        raise Refusal(
            RefusalKind.FORBIDDEN,
            f"The ticket is at L{state.level}; a Level {actor.level} engineer cannot acknowledge it: "
            f"an engineer at L{state.level} or above must.",
        )
    if clocks_acknowledged_by(state, actor):
        return
    line = answering_line(state, actor)
    who = LINE_SUBJECTS[line]
    if line in state.acknowledged_lines:
        raise Refusal(
            RefusalKind.CONFLICT,
            f"{who} has already acknowledged this ticket and none of its clocks awaits acknowledgement.",
        )
    if not any(c.kind in RESPONSE_CLOCKS and c.owner == line for c in state.clocks):
        raise Refusal(
            RefusalKind.CONFLICT, f"{who} has no response clock on this ticket; add a comment instead."
        )


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


# --- Actions ----------------------------------------------------------------------------------


def apply(state: TicketState, action: TicketAction, now: datetime) -> Outcome:
    """Fire every deadline due by `now`, then validate and apply one action at `now`.

    The outcome carries the notifications of both: the deadlines' and the action's.
    """
    step = _Step(state, now)
    _advance(step)
    _validate(step.state, action)
    state = step.state
    actor = str(action.actor)
    match action:
        case Acknowledge(note=note):
            _acknowledge(step, action.actor, note)
        case Comment(body=body, public=public):
            _comment(step, action.actor, body, public=public)
        case Escalate(level=level, trigger=trigger, note=note):
            step.escalate(level, trigger, actor=actor, note=note)
        case Handoff(category=category, note=note):
            _handoff(step, actor, category, note)
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
            _resolve(step, action.actor, resolution)
        case Reopen(reason=reason):
            resolved_at = state.resolved_at or now
            for clock in state.clocks:
                # Only the resolution clock that resolving stopped runs on; outcomes stay.
                if (
                    clock.kind == ClockKind.RESOLUTION
                    and clock.status == ClockStatus.MET
                    and clock.stopped_at == resolved_at
                ):
                    step.unpause(clock, resolved_at)
            state.status, state.resolved_at = TicketStatus.ACKNOWLEDGED, None
            _start_periodic_update(step)
            event = step.record("reopened", f"Reopened: {reason}", actor=actor)
            step.notify_level(event, f"Reopened: {state.title}")
        case Close(note=note):
            _close(step, actor, note)
    return step.outcome()


def _acknowledge(step: _Step, actor: Principal, note: str | None) -> None:
    state = step.state
    line = answering_line(state, actor)
    stopped = clocks_acknowledged_by(state, actor)
    for clock in stopped:
        step.stop(clock, ClockStatus.MET)
    answered = [line, *(c.owner for c in stopped)]
    for each in answered:
        if each not in state.acknowledged_lines:
            state.acknowledged_lines.append(each)
    # The ticket is acknowledged once the line that owns it has first responded.
    first = state.acknowledged_at is None and state.owning_line in answered
    if first:
        state.acknowledged_at = step.now
        if state.status == TicketStatus.OPEN:
            state.status = TicketStatus.ACKNOWLEDGED
        _start_periodic_update(step)
    if stopped:
        what = ", ".join(dict.fromkeys(CLOCK_NAMES[c.kind] for c in stopped))
    elif any(
        c.kind == ClockKind.FIRST_RESPONSE and c.owner == line and c.status == ClockStatus.BREACHED
        for c in state.clocks
    ):
        what = "late first response"
    else:
        what = "late response"
    summary = f"Acknowledged by {actor} at L{state.level} ({what})"
    if note:
        summary += f": {note}"
    event = step.record(
        "acknowledged",
        summary,
        actor=str(actor),
        line=line.value,
        met=",".join(dict.fromkeys(c.kind.value for c in stopped)),
    )
    if first:
        step.notify(event, Audience.CUSTOMER, f"We are working on it: {state.title}")


def _comment(step: _Step, actor: Principal, body: str, *, public: bool) -> None:
    state = step.state
    if public:
        visibility, kind = "public", "a public comment"
    elif actor.role == Role.PARTNER:
        visibility, kind = "partner_internal", "a partner-internal note"
    else:
        visibility, kind = "internal", "an internal note"
    step.record("commented", f"{actor} added {kind}: {body[:200]}", actor=str(actor), visibility=visibility)
    # Only the owning line's public word is the customer update; a customer's own comment
    # and internal notes never are (DESIGN.md §4).
    if public and speaks_for_owning_line(state, actor):
        updates = step.live(ClockKind.PERIODIC_UPDATE)
        for clock in updates:
            step.stop(clock, ClockStatus.MET)
        if updates:
            _start_periodic_update(step)


def _start_periodic_update(step: _Step) -> None:
    state = step.state
    target = state.entitlement.periodic_update.get(str(int(state.severity)))
    if target is not None and state.status not in CLOSED_STATES:
        step.start_clock(ClockKind.PERIODIC_UPDATE, target)
    else:
        for clock in step.live(ClockKind.PERIODIC_UPDATE):
            step.stop(clock, ClockStatus.CANCELLED)


def _handoff(step: _Step, actor: str, category: HandoffCategory, note: str | None) -> None:
    state = step.state
    state.owning_line = OwningLine.CONNECTSOFT
    state.handoff_category = category
    state.level = max(state.level, 2)
    summary = f"Partner handed off to ConnectSoft second line ({category.value})"
    if note:
        summary += f": {note}"
    event = step.record("handed_off", summary, actor=actor, category=category.value)
    # Joint escalation: both lines hear of it.
    step.notify(event, policy.LEVEL_AUDIENCE[state.level], f"Partner handoff: {state.title}")
    step.notify(event, Audience.PARTNER, f"Handed off to ConnectSoft: {state.title}")
    if state.severity == Severity.CRITICAL:
        # Routed before the clock starts, so the handoff clock is the one the routed level
        # must answer: one acknowledgement clock for one route.
        step.critical_response(actor="system", start_ack=False)
    target = state.entitlement.handoff_targets.get(str(int(state.severity)))
    if target is None:
        target = state.entitlement.response_target(state.severity)
    step.start_clock(ClockKind.HANDOFF_RESPONSE, target, level=state.level)


def _change_severity(step: _Step, actor: str, severity: Severity, reason: str) -> None:
    state = step.state
    before = state.severity
    state.severity = severity
    ent = state.entitlement
    for clock in state.clocks:
        # Decided clocks (met, breached, cancelled) keep their outcome.
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
        clocks.schedule(clock, ent)
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
    if severity == Severity.CRITICAL:
        if state.owning_line == OwningLine.CONNECTSOFT:
            step.critical_response(actor=actor)
        else:
            step.partner_critical_response(actor=actor)


def _resolve(step: _Step, actor: Principal, resolution: str) -> None:
    state = step.state
    # Resolving answers for the resolver's line; another line's open clock is cancelled, never met.
    lines = acknowledging_lines(actor)
    for clock in state.clocks:
        met = clock.kind != ClockKind.PERIODIC_UPDATE and clock.owner in lines
        step.stop(clock, ClockStatus.MET if met else ClockStatus.CANCELLED)
    state.status, state.resolved_at = TicketStatus.RESOLVED, step.now
    event = step.record("resolved", f"Resolved: {resolution}", actor=str(actor))
    step.notify(event, Audience.CUSTOMER, f"Resolved: {state.title}")


def _close(step: _Step, actor: str, note: str | None) -> None:
    state = step.state
    running = binding_clocks_to_stop(state)
    for clock in state.clocks:
        step.stop(clock, ClockStatus.CANCELLED)
    state.status, state.closed_at = TicketStatus.CLOSED, step.now
    detail: dict[str, str] = {}
    if running:
        # Who closed it is the event's actor; why is the note the validation asked for.
        detail["stopped_clocks"] = ",".join(dict.fromkeys(c.kind.value for c in running))
    if note:
        detail["reason"] = note
    event = step.record("closed", f"Closed{': ' + note if note else ''}", actor=actor)
    event.detail.update(detail)


# --- Time -------------------------------------------------------------------------------------


def advance(state: TicketState, now: datetime) -> Outcome:
    """Fire every warning and breach due at or before `now`, in time order."""
    step = _Step(state, now)
    _advance(step)
    return step.outcome()


def _advance(step: _Step) -> None:
    state = step.state
    now = step.now
    while True:
        due = clocks.earliest_due(state.clocks)
        if due is None or due.at > now:
            break
        # Effects happen as of the instant they were due, even if the worker wakes late, but
        # never before what is already on the timeline (a severity raise can move a deadline
        # into the past: that miss is known only from the raise on).
        at = max(due.at, state.events[-1].at) if state.events else due.at
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


def auto_close_at(state: TicketState) -> datetime:
    assert state.resolved_at is not None
    return state.resolved_at + timedelta(days=policy.AUTO_CLOSE_AFTER_RESOLVED_DAYS)


def _next_due(state: TicketState) -> datetime | None:
    """The next instant at which `advance` would change the ticket."""
    if state.status == TicketStatus.CLOSED:
        return None
    if state.status == TicketStatus.RESOLVED and state.resolved_at is not None:
        return auto_close_at(state)
    due = clocks.earliest_due(state.clocks)
    return due.at if due else None


def next_wakeup(state: TicketState) -> Wakeup | None:
    """When the workflow must next wake on its own, and a sentence for the timer summary."""
    if state.status == TicketStatus.CLOSED:
        return None
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


def _warn(step: _Step, together: list[SlaClock], at: datetime) -> None:
    clock = together[0]
    for each in together:
        each.status = ClockStatus.WARNED
    pct = round(step.state.entitlement.warn_ratio * 100)
    event = step.record(
        "sla_warning",
        f"{CLOCK_NAMES[clock.kind].capitalize()} at {pct}% of {clock.target.label}: "
        f"due {clock.due_at:%Y-%m-%d %H:%M} UTC",
        at=at,
        **_clock_detail(together),
    )
    step.notify_level(event, f"SLA warning ({CLOCK_NAMES[clock.kind]}): {step.state.title}", clock.level)


def _breach(step: _Step, together: list[SlaClock], at: datetime) -> None:
    state = step.state
    clock = together[0]
    for each in together:
        each.status, each.stopped_at = ClockStatus.BREACHED, at
    if clock.kind == ClockKind.PERIODIC_UPDATE:
        event = step.record(
            "update_overdue",
            f"Customer update overdue ({clock.target.label})",
            at=at,
            **_clock_detail(together),
        )
        step.notify_level(event, f"Customer update overdue: {state.title}")
        step.start_clock(ClockKind.PERIODIC_UPDATE, clock.target, started_at=at)
        return
    # Each breach counts against the line that missed it (DESIGN.md §6).
    line = clock.owner
    if line == OwningLine.PARTNER:
        state.partner_sla_breached = True
    else:
        state.sla_breached = True
    event = step.record(
        "sla_breached",
        f"{CLOCK_NAMES[clock.kind].capitalize()} SLA breached by {LINE_NAMES[line]} "
        f"({clock.target.label}, due {clock.due_at:%Y-%m-%d %H:%M} UTC)",
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
        top = policy.TOP_OF_LADDER_AUDIENCE[max_level]
        step.notify(event, top, f"SLA breached at the top of the ladder: {state.title}")
    step.notify_level(event, subject)
    if climbs and state.level < max_level:
        step.escalate(state.level + 1, EscalationTrigger.SLA_BREACH, actor="system")
