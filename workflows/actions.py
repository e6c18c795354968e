"""The ticket actions, one definition each: its body (the model), who may take it, its check
and its effect, side by side.

Pure: no Temporal, no I/O. TicketWorkflow's updates and `<name>-signal` signals and the
API's routes are all generated from `ACTIONS`, so adding an action is one new definition here
(and its tests).

A check raises `Refusal` and never changes the ticket. An effect changes the state of the step
it is given, in place; it runs only after its check passed on that same state, so it never
refuses half way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from pydantic import Field

from workflows import clocks, ladder
from workflows.clocks import CLOCK_NAMES, RESPONSE_CLOCKS
from workflows.models import (
    CLOSED_STATES,
    Audience,
    ClockKind,
    ClockStatus,
    EscalationTrigger,
    EventKind,
    HandoffCategory,
    OwningLine,
    PageAction,
    Principal,
    ProductType,
    Role,
    Severity,
    SlaClock,
    TicketState,
    TicketStatus,
    _Model,
)
from workflows.outages import outage_times_problem
from workflows.permissions import Capability, can_reach, forbidden_reason
from workflows.policy import rules_for
from workflows.text import CleanText
from workflows.timeline import Step


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


CONFLICT, INVALID = RefusalKind.CONFLICT, RefusalKind.INVALID


def not_found(ticket_id: str) -> Refusal:
    return Refusal(
        RefusalKind.NOT_FOUND, f"No ticket {ticket_id!r}: check the id returned when it was filed."
    )


LINE_SUBJECTS = {OwningLine.CONNECTSOFT: "ConnectSoft", OwningLine.PARTNER: "The partner's first line"}

Action = TypeVar("Action", bound="ActionModel")


class ActionModel(_Model):
    """Every action names who takes it: an API key's principal, or the actor a signal names."""

    actor: Principal


@dataclass(frozen=True)
class ActionDefinition(Generic[Action]):
    """One action: the update it is (and `<update>-signal`), its body, who may take it, its
    check and its effect."""

    update: str
    model: type[Action]
    capability: Capability
    summary: str
    check: Callable[[TicketState, Action], None]
    effect: Callable[[Step, Action], None]
    # When one action needs more than one permission, by its body (an internal note).
    capability_of: Callable[[Action], Capability] | None = None
    # Whether the action can apply to the ticket as it is, whatever its body: state only. The
    # console offers the action's form only then; `check` still decides on the whole action.
    offered_when: Callable[[TicketState], bool] = lambda state: True
    # The event its effect records on the timeline (tests/test_machine_properties.py checks it).
    event: EventKind = field(kw_only=True)
    # A check that needs the machine's now (a time the client sent must not be in the future).
    check_at: Callable[[TicketState, Action, datetime], None] | None = None

    @property
    def method(self) -> str:
        """The workflow's method for the update: `change-severity` is `change_severity`."""
        return self.update.replace("-", "_")

    @property
    def signal(self) -> str:
        return f"{self.update}-signal"

    def needs(self, action: Action) -> Capability:
        return self.capability_of(action) if self.capability_of else self.capability


def _anytime(state: TicketState, action: Any) -> None:
    """No check of its own beyond reach, permission and the ticket being open."""


# --- Who answers for which line ---------------------------------------------------------------


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


def end_wait(step: Step) -> None:
    """A wait on the customer ends with a resume, a resolution or a close."""
    state = step.state
    if state.waiting_since is not None:
        state.waited_seconds += max((step.now - state.waiting_since).total_seconds(), 0.0)
        state.waiting_since = None


def binding_clocks_to_stop(state: TicketState) -> list[SlaClock]:
    """Undecided SLA clocks that closing the ticket would stop (periodic updates aside)."""
    return [
        c
        for c in state.clocks
        if c.kind != ClockKind.PERIODIC_UPDATE
        and c.target.binding
        and (c.is_live or c.status == ClockStatus.PAUSED)
    ]


# --- acknowledge ------------------------------------------------------------------------------


class Acknowledge(ActionModel):
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_acknowledge(state: TicketState, action: Acknowledge) -> None:
    actor = action.actor
    if state.status in CLOSED_STATES:
        raise Refusal(CONFLICT, "The ticket is resolved; reopen it before acknowledging.")
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
            CONFLICT,
            f"{who} has already acknowledged this ticket and none of its clocks awaits acknowledgement.",
        )
    if not any(c.kind in RESPONSE_CLOCKS and c.owner == line for c in state.clocks):
        raise Refusal(CONFLICT, f"{who} has no response clock on this ticket; add a comment instead.")


def acknowledge(step: Step, action: Acknowledge) -> None:
    state, actor = step.state, action.actor
    line = answering_line(state, actor)
    stopped = clocks_acknowledged_by(state, actor)
    for clock in stopped:
        clocks.stop(step, clock, ClockStatus.MET)
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
        clocks.start_periodic_update(step)
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
    if action.note:
        summary += f": {action.note}"
    event = step.record(
        EventKind.ACKNOWLEDGED,
        summary,
        actor=str(actor),
        line=line.value,
        met=",".join(dict.fromkeys(c.kind.value for c in stopped)),
    )
    if first:
        step.notify(event, Audience.CUSTOMER, f"We are working on it: {state.title}")
    line_pages = step.rules.line_pages
    step.settle_pages(
        event, PageAction.ACKNOWLEDGE, tuple(line_pages[each] for each in dict.fromkeys(answered))
    )


ACKNOWLEDGE: Final = ActionDefinition(
    "acknowledge",
    Acknowledge,
    Capability.ACKNOWLEDGE,
    "First response, or acknowledgement of an escalation, by the principal's own line.",
    check_acknowledge,
    acknowledge,
    offered_when=lambda t: t.status not in CLOSED_STATES,
    event=EventKind.ACKNOWLEDGED,
)


# --- comment ----------------------------------------------------------------------------------


class Comment(ActionModel):
    body: CleanText = Field(min_length=1, max_length=10_000)
    public: bool = True


def comment(step: Step, action: Comment) -> None:
    state, actor = step.state, action.actor
    if action.public:
        visibility, kind = "public", "a public comment"
    elif actor.role == Role.PARTNER:
        visibility, kind = "partner_internal", "a partner-internal note"
    else:
        visibility, kind = "internal", "an internal note"
    step.record(
        EventKind.COMMENTED,
        f"{actor} added {kind}: {action.body[:200]}",
        actor=str(actor),
        visibility=visibility,
    )
    # Only the owning line's public word is the customer update; a customer's own comment
    # and internal notes never are (DESIGN.md §4).
    if action.public and speaks_for_owning_line(state, actor):
        updates = clocks.live(state, ClockKind.PERIODIC_UPDATE)
        for clock in updates:
            clocks.stop(step, clock, ClockStatus.MET)
        if updates:
            clocks.start_periodic_update(step)


COMMENT: Final = ActionDefinition(
    "comment",
    Comment,
    Capability.COMMENT,
    "A public comment, or an internal note (`public: false`). Only the owning line's public "
    "comment counts as the customer update.",
    _anytime,
    comment,
    capability_of=lambda action: Capability.COMMENT if action.public else Capability.INTERNAL_NOTE,
    event=EventKind.COMMENTED,
)


# --- escalate ---------------------------------------------------------------------------------


class Escalate(ActionModel):
    level: int = Field(ge=1, le=4)
    trigger: EscalationTrigger
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_escalate(state: TicketState, action: Escalate) -> None:
    level, trigger = action.level, action.trigger
    ent = state.entitlement
    rules = rules_for(ent.policy_version)
    if state.status in CLOSED_STATES:
        raise Refusal(CONFLICT, "The ticket is resolved; reopen it before escalating.")
    if trigger in rules.system_triggers:
        raise Refusal(
            INVALID,
            f"{trigger.value} is set by the system; name one of the escalation triggers of the policy.",
        )
    if level > ent.max_level:
        # A partner ticket climbs as far as the partner's own agreement goes (DESIGN.md §6).
        agreement = "partner agreement" if ent.partner_tier else "contract"
        raise Refusal(
            INVALID,
            f"A {ent.connectsoft_tier.label} {agreement} is entitled to L1-L{ent.max_level}; "
            f"L{level} ({rules.level_names[level]}) is for Premium (enterprise) customers only.",
        )
    if state.owning_line == OwningLine.PARTNER:
        raise Refusal(
            CONFLICT, "The partner's first line owns this ticket: hand it off to ConnectSoft to escalate."
        )
    if level <= state.level:
        raise Refusal(CONFLICT, f"The ticket is already at L{state.level}; escalate to a higher level.")
    trigger_level = rules.level_for_trigger(trigger)
    if trigger_level != level:
        triggers = rules.escalation_triggers.get(level)
        allowed = ", ".join(t.value for t in triggers) if triggers else "none"
        raise Refusal(
            INVALID,
            f"{trigger.value} is a Level {trigger_level} trigger; "
            f"to escalate to L{level} name one of: {allowed}.",
        )


def escalate(step: Step, action: Escalate) -> None:
    ladder.escalate(step, action.level, action.trigger, actor=str(action.actor), note=action.note)


ESCALATE: Final = ActionDefinition(
    "escalate",
    Escalate,
    Capability.ESCALATE,
    "Climb the ladder, naming a trigger of the target level.",
    check_escalate,
    escalate,
    offered_when=lambda t: (
        t.status not in CLOSED_STATES
        and t.owning_line == OwningLine.CONNECTSOFT
        and t.level < t.entitlement.max_level
    ),
    event=EventKind.ESCALATED,
)


# --- handoff ----------------------------------------------------------------------------------


class Handoff(ActionModel):
    category: HandoffCategory
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_handoff(state: TicketState, action: Handoff) -> None:
    if state.entitlement.product_type != ProductType.PARTNER_DELIVERED:
        raise Refusal(INVALID, "Only partner-delivered tickets are handed off; escalate this ticket instead.")
    if state.status in CLOSED_STATES:
        raise Refusal(CONFLICT, "The ticket is resolved; reopen it before handing off.")
    if state.owning_line == OwningLine.CONNECTSOFT:
        raise Refusal(CONFLICT, "ConnectSoft already owns this ticket; hand it back first.")


def handoff(step: Step, action: Handoff) -> None:
    state, category = step.state, action.category
    state.owning_line = OwningLine.CONNECTSOFT
    state.handoff_category = category
    state.level = max(state.level, step.rules.handoff_level)
    summary = f"Partner handed off to ConnectSoft second line ({category.value})"
    if action.note:
        summary += f": {action.note}"
    event = step.record(EventKind.HANDED_OFF, summary, actor=str(action.actor), category=category.value)
    # Joint escalation: both lines hear of it.
    step.notify(event, step.rules.level_audiences[state.level], f"Partner handoff: {state.title}")
    step.notify(event, Audience.PARTNER, f"Handed off to ConnectSoft: {state.title}")
    if state.severity == Severity.CRITICAL:
        # Routed before the clock starts, so the handoff clock is the one the routed level
        # must answer: one acknowledgement clock for one route.
        ladder.critical_response(step, actor="system", start_ack=False)
    target = state.entitlement.handoff_targets.get(str(int(state.severity)))
    if target is None:
        target = state.entitlement.response_target(state.severity)
    clocks.start_clock(step, ClockKind.HANDOFF_RESPONSE, target, level=state.level)


HANDOFF: Final = ActionDefinition(
    "handoff",
    Handoff,
    Capability.HANDOFF,
    "The partner's first line hands off to ConnectSoft's second line.",
    check_handoff,
    handoff,
    offered_when=lambda t: (
        t.entitlement.product_type == ProductType.PARTNER_DELIVERED
        and t.owning_line == OwningLine.PARTNER
        and t.status not in CLOSED_STATES
    ),
    event=EventKind.HANDED_OFF,
)


# --- handback ---------------------------------------------------------------------------------


class Handback(ActionModel):
    note: CleanText = Field(min_length=1, max_length=10_000)


def check_handback(state: TicketState, action: Handback) -> None:
    if state.owning_line != OwningLine.CONNECTSOFT or state.handoff_category is None:
        raise Refusal(CONFLICT, "Only a ticket handed off to ConnectSoft can be handed back.")


def handback(step: Step, action: Handback) -> None:
    state = step.state
    for clock in clocks.live(state, ClockKind.HANDOFF_RESPONSE, ClockKind.ESCALATION_ACK):
        clocks.stop(step, clock, ClockStatus.MET)
    state.owning_line = OwningLine.PARTNER
    event = step.record(
        EventKind.HANDED_BACK,
        f"ConnectSoft handed back to the partner: {action.note}",
        actor=str(action.actor),
    )
    step.notify(event, Audience.PARTNER, f"Handed back: {state.title}")


HANDBACK: Final = ActionDefinition(
    "handback",
    Handback,
    Capability.HANDBACK,
    "ConnectSoft hands the ticket back to the partner, with a note.",
    check_handback,
    handback,
    offered_when=lambda t: t.owning_line == OwningLine.CONNECTSOFT and t.handoff_category is not None,
    event=EventKind.HANDED_BACK,
)


# --- change-severity --------------------------------------------------------------------------


class ChangeSeverity(ActionModel):
    severity: Severity
    reason: CleanText = Field(min_length=1, max_length=10_000)


def check_change_severity(state: TicketState, action: ChangeSeverity) -> None:
    severity = action.severity
    if state.status in CLOSED_STATES:
        raise Refusal(CONFLICT, "The ticket is resolved; reopen it before changing severity.")
    if severity == state.severity:
        raise Refusal(CONFLICT, f"The ticket is already Sev {int(severity)}.")
    low_only = rules_for(state.entitlement.policy_version).low_only_categories
    if state.category in low_only and severity != Severity.LOW:
        raise Refusal(INVALID, f"A {state.category.value.replace('_', ' ')} is Sev 4 at most.")


def change_severity(step: Step, action: ChangeSeverity) -> None:
    state, severity, actor = step.state, action.severity, str(action.actor)
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
                clocks.stop(step, clock, ClockStatus.CANCELLED)
                continue
        elif clock.kind == ClockKind.PERIODIC_UPDATE:
            continue
        elif clock.kind == ClockKind.FIRST_RESPONSE:
            new_target = ent.response_target(severity)
        else:
            new_target = ladder.response_target(state, severity)
        # Recomputed from the clock's original start; banked pause is kept.
        clock.target = new_target
        clocks.schedule(clock, ent, step.rules.calendar_hours)
    resolution = ent.resolution_targets.get(str(int(severity)))
    if resolution and not any(c.kind == ClockKind.RESOLUTION for c in state.clocks):
        clocks.start_clock(step, ClockKind.RESOLUTION, resolution, started_at=state.received_at)
    if state.acknowledged_at and state.status != TicketStatus.WAITING_ON_CUSTOMER:
        clocks.start_periodic_update(step)
    event = step.record(
        EventKind.SEVERITY_CHANGED,
        f"Severity Sev {int(before)} -> Sev {int(severity)}: {action.reason}",
        actor=actor,
        from_severity=str(int(before)),
        to_severity=str(int(severity)),
    )
    step.notify_level(event, f"Severity now Sev {int(severity)}: {state.title}")
    if severity == Severity.CRITICAL:
        if state.owning_line == OwningLine.CONNECTSOFT:
            ladder.critical_response(step, actor=actor)
        else:
            ladder.partner_critical_response(step, actor=actor)


CHANGE_SEVERITY: Final = ActionDefinition(
    "change-severity",
    ChangeSeverity,
    Capability.CHANGE_SEVERITY,
    "Recomputes every clock from the original intake time, keeping banked pauses.",
    check_change_severity,
    change_severity,
    offered_when=lambda t: t.status not in CLOSED_STATES,
    event=EventKind.SEVERITY_CHANGED,
)


# --- wait-on-customer -------------------------------------------------------------------------


class WaitOnCustomer(ActionModel):
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_wait_on_customer(state: TicketState, action: WaitOnCustomer) -> None:
    status = state.status
    if status in CLOSED_STATES or status == TicketStatus.WAITING_ON_CUSTOMER:
        raise Refusal(
            CONFLICT,
            f"The ticket is {status.value.replace('_', ' ')}; it cannot wait on the customer now.",
        )


def wait_on_customer(step: Step, action: WaitOnCustomer) -> None:
    state = step.state
    state.status, state.waiting_since = TicketStatus.WAITING_ON_CUSTOMER, step.now
    for clock in clocks.live(state, ClockKind.RESOLUTION):
        clocks.pause(step, clock)
    for clock in clocks.live(state, ClockKind.PERIODIC_UPDATE):
        clocks.stop(step, clock, ClockStatus.CANCELLED)
    note = action.note
    event = step.record(
        EventKind.WAITING_ON_CUSTOMER,
        f"Waiting on the customer{': ' + note if note else ''}",
        actor=str(action.actor),
    )
    step.notify(event, Audience.CUSTOMER, f"We need your input: {state.title}")


WAIT_ON_CUSTOMER: Final = ActionDefinition(
    "wait-on-customer",
    WaitOnCustomer,
    Capability.WAIT_ON_CUSTOMER,
    "Pause the resolution clock until the customer answers.",
    check_wait_on_customer,
    wait_on_customer,
    offered_when=lambda t: t.status in (TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED),
    event=EventKind.WAITING_ON_CUSTOMER,
)


# --- resume -----------------------------------------------------------------------------------


class Resume(ActionModel):
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_resume(state: TicketState, action: Resume) -> None:
    if state.status != TicketStatus.WAITING_ON_CUSTOMER:
        raise Refusal(CONFLICT, "The ticket is not waiting on the customer; there is nothing to resume.")


def resume(step: Step, action: Resume) -> None:
    state = step.state
    state.status = TicketStatus.ACKNOWLEDGED if state.acknowledged_at else TicketStatus.OPEN
    end_wait(step)
    for clock in state.clocks:
        if clock.status == ClockStatus.PAUSED and clock.paused_since is not None:
            clocks.unpause(step, clock, clock.paused_since)
    if state.acknowledged_at:
        clocks.start_periodic_update(step)
    note = action.note
    step.record(EventKind.RESUMED, f"Work resumed{': ' + note if note else ''}", actor=str(action.actor))


RESUME: Final = ActionDefinition(
    "resume",
    Resume,
    Capability.RESUME,
    "Work goes on; paused clocks run again.",
    check_resume,
    resume,
    offered_when=lambda t: t.status == TicketStatus.WAITING_ON_CUSTOMER,
    event=EventKind.RESUMED,
)


# --- resolve ----------------------------------------------------------------------------------


class Resolve(ActionModel):
    resolution: CleanText = Field(min_length=1, max_length=10_000)


def check_resolve(state: TicketState, action: Resolve) -> None:
    if state.status in CLOSED_STATES:
        raise Refusal(CONFLICT, "The ticket is already resolved.")


def resolve(step: Step, action: Resolve) -> None:
    state = step.state
    # Resolving answers for the resolver's line; another line's open clock is cancelled, never met.
    lines = acknowledging_lines(action.actor)
    for clock in state.clocks:
        met = clock.kind != ClockKind.PERIODIC_UPDATE and clock.owner in lines
        clocks.stop(step, clock, ClockStatus.MET if met else ClockStatus.CANCELLED)
    state.status, state.resolved_at = TicketStatus.RESOLVED, step.now
    end_wait(step)
    event = step.record(EventKind.RESOLVED, f"Resolved: {action.resolution}", actor=str(action.actor))
    step.notify(event, Audience.CUSTOMER, f"Resolved: {state.title}")
    step.settle_pages(event, PageAction.RESOLVE, step.rules.paged_audiences)


RESOLVE: Final = ActionDefinition(
    "resolve",
    Resolve,
    Capability.RESOLVE,
    "Resolve the ticket; it closes by itself 7 days later.",
    check_resolve,
    resolve,
    offered_when=lambda t: t.status not in CLOSED_STATES,
    event=EventKind.RESOLVED,
)


# --- reopen -----------------------------------------------------------------------------------


class Reopen(ActionModel):
    reason: CleanText = Field(min_length=1, max_length=10_000)


def check_reopen(state: TicketState, action: Reopen) -> None:
    if state.status != TicketStatus.RESOLVED:
        raise Refusal(CONFLICT, "Only a resolved ticket can be reopened.")


def reopen(step: Step, action: Reopen) -> None:
    state = step.state
    resolved_at = state.resolved_at or step.now
    for clock in state.clocks:
        # Only the resolution clock that resolving stopped runs on; outcomes stay.
        if (
            clock.kind == ClockKind.RESOLUTION
            and clock.status == ClockStatus.MET
            and clock.stopped_at == resolved_at
        ):
            clocks.unpause(step, clock, resolved_at)
    state.status, state.resolved_at = TicketStatus.ACKNOWLEDGED, None
    clocks.start_periodic_update(step)
    event = step.record(EventKind.REOPENED, f"Reopened: {action.reason}", actor=str(action.actor))
    step.notify_level(event, f"Reopened: {state.title}")


REOPEN: Final = ActionDefinition(
    "reopen",
    Reopen,
    Capability.REOPEN,
    "Reopen a resolved ticket.",
    check_reopen,
    reopen,
    offered_when=lambda t: t.status == TicketStatus.RESOLVED,
    event=EventKind.REOPENED,
)


# --- close ------------------------------------------------------------------------------------


class Close(ActionModel):
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_close(state: TicketState, action: Close) -> None:
    note = action.note
    undecided = list(dict.fromkeys(CLOCK_NAMES[c.kind] for c in binding_clocks_to_stop(state)))
    if undecided and not (note and note.strip()):
        clocks_are = f"{' and '.join(undecided)} clock{'s are' if len(undecided) > 1 else ' is'}"
        raise Refusal(
            INVALID,
            f"The {clocks_are} still open; give the reason for closing the ticket before "
            "it is met or breached in the note.",
        )


def close(step: Step, action: Close) -> None:
    state, note = step.state, action.note
    running = binding_clocks_to_stop(state)
    for clock in state.clocks:
        clocks.stop(step, clock, ClockStatus.CANCELLED)
    state.status, state.closed_at = TicketStatus.CLOSED, step.now
    end_wait(step)
    detail: dict[str, str] = {}
    if running:
        # Who closed it is the event's actor; why is the note the validation asked for.
        detail["stopped_clocks"] = ",".join(dict.fromkeys(c.kind.value for c in running))
    if note:
        detail["reason"] = note
    event = step.record(EventKind.CLOSED, f"Closed{': ' + note if note else ''}", actor=str(action.actor))
    event.detail.update(detail)
    step.settle_pages(event, PageAction.RESOLVE, step.rules.paged_audiences)


CLOSE: Final = ActionDefinition(
    "close",
    Close,
    Capability.CLOSE,
    "Close the ticket (a customer withdraws its own). With a live SLA clock, say why in `note`.",
    check_close,
    close,
    event=EventKind.CLOSED,
)


# --- outage -----------------------------------------------------------------------------------


class RecordOutage(ActionModel):
    """When the customer's service went down and, once known, came back (DESIGN.md §12)."""

    started_at: datetime
    ended_at: datetime | None = None
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_outage(state: TicketState, action: RecordOutage) -> None:
    if state.status == TicketStatus.CLOSED:
        raise Refusal(CONFLICT, "The ticket is closed; file a new ticket instead.")
    if state.severity != Severity.CRITICAL:
        raise Refusal(
            INVALID,
            f"Only a Sev 1 records an outage; this ticket is Sev {int(state.severity)}. "
            "Change its severity first if the service is down.",
        )
    _check_outage_times(action.started_at, action.ended_at)


def _check_outage_times(started_at: datetime, ended_at: datetime | None) -> None:
    if started_at.tzinfo is None or (ended_at is not None and ended_at.tzinfo is None):
        raise Refusal(INVALID, "Give outage times with a UTC offset, e.g. 2026-11-27T09:30:00Z.")
    if ended_at is not None and ended_at < started_at:
        raise Refusal(INVALID, "The outage cannot end before it started; check ended_at.")


def _check_outage_window(state: TicketState, action: RecordOutage, now: datetime) -> None:
    """The bounds of workflows/outages.py, at the machine's now (issue 17 §1)."""
    problem = outage_times_problem(
        received_at=state.received_at, now=now, started_at=action.started_at, ended_at=action.ended_at
    )
    if problem is not None:
        raise Refusal(INVALID, f"{problem.field}: {problem.message.rstrip('.')} (rule {problem.rule}).")


def record_outage(step: Step, action: RecordOutage) -> None:
    state = step.state
    state.outage_started_at, state.outage_ended_at = action.started_at, action.ended_at
    until = f" until {action.ended_at:%Y-%m-%d %H:%M} UTC" if action.ended_at else ", still down"
    note = f": {action.note}" if action.note else ""
    step.record(
        EventKind.OUTAGE_RECORDED,
        f"Outage from {action.started_at:%Y-%m-%d %H:%M} UTC{until}{note}",
        actor=str(action.actor),
        started_at=action.started_at.isoformat(),
        ended_at=action.ended_at.isoformat() if action.ended_at else "",
    )


OUTAGE: Final = ActionDefinition(
    "outage",
    RecordOutage,
    Capability.OUTAGE,
    "Record when a Sev 1's outage began and, once known, ended, for the uptime report.",
    check_outage,
    record_outage,
    offered_when=lambda t: t.severity == Severity.CRITICAL,
    event=EventKind.OUTAGE_RECORDED,
    check_at=_check_outage_window,
)


# --- The table ----------------------------------------------------------------------------------

ACTIONS: Final[tuple[ActionDefinition[Any], ...]] = (
    ACKNOWLEDGE,
    COMMENT,
    ESCALATE,
    HANDOFF,
    HANDBACK,
    CHANGE_SEVERITY,
    WAIT_ON_CUSTOMER,
    RESUME,
    RESOLVE,
    REOPEN,
    CLOSE,
    OUTAGE,
)

TicketAction = (
    Acknowledge
    | Comment
    | Escalate
    | Handoff
    | Handback
    | ChangeSeverity
    | WaitOnCustomer
    | Resume
    | Resolve
    | Reopen
    | Close
    | RecordOutage
)

_BY_MODEL: Final[dict[type[ActionModel], ActionDefinition[Any]]] = {d.model: d for d in ACTIONS}


def definition_of(action: ActionModel) -> ActionDefinition[Any]:
    return _BY_MODEL[type(action)]


def authorize(state: TicketState, action: ActionModel) -> None:
    """Raise Refusal when the actor may not take `action` on this ticket. Never mutates.

    Decided against the permission table and reach the ticket's policy version pinned, so a
    deploy that edits them changes nothing for an open ticket. Reach first (404, so ids do not
    leak), then the permission table (403).
    """
    definition = definition_of(action)
    actor = action.actor
    rules = rules_for(state.entitlement.policy_version)
    if not can_reach(rules, actor, customer_id=state.customer_id, partner_id=state.entitlement.partner_id):
        raise not_found(state.ticket_id)
    reason = forbidden_reason(rules, actor, definition.needs(action), state=state, action=action)
    if reason is not None:
        raise Refusal(RefusalKind.FORBIDDEN, reason)


def check(state: TicketState, action: ActionModel) -> None:
    """Raise Refusal when the ticket, as it is, cannot take `action` (409/422). Never mutates.

    State only: who may take it is `authorize`, decided before (in the update's validator). A
    closed ticket takes no action at all.
    """
    if state.status == TicketStatus.CLOSED:
        raise Refusal(CONFLICT, "The ticket is closed; file a new ticket instead.")
    definition_of(action).check(state, action)


def check_at(state: TicketState, action: ActionModel, now: datetime) -> None:
    """Raise Refusal when `action` cannot be taken at `now`: the checks that need the time
    (the update's validator runs them; a replayed update does not run them again)."""
    timed = definition_of(action).check_at
    if timed is not None:
        timed(state, action, now)


def take(step: Step, action: ActionModel) -> None:
    """Apply a checked action to the step's state."""
    definition_of(action).effect(step, action)
