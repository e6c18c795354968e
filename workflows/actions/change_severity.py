"""The `change-severity` action. Change the severity; every clock is recomputed from intake."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks, ladder
from workflows.actions.base import (
    CONFLICT,
    INVALID,
    ActionDefinition,
    ActionModel,
    Choice,
    FormField,
    Refusal,
    Widget,
    integer,
)
from workflows.enums import (
    CLOSED_STATES,
    ClockKind,
    ClockStatus,
    EventKind,
    OwningLine,
    Severity,
    TicketStatus,
)
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.policy import rules_for
from workflows.text import CleanText
from workflows.timeline import Step


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


CHANGE_SEVERITY_FORM: Final = (
    FormField(
        "severity",
        "New severity",
        Widget.SELECT,
        required=True,
        choices=lambda state: [Choice(str(int(s)), s.label) for s in Severity if s != state.severity],
        parse=integer,
    ),
    FormField("reason", "Reason", required=True),
)


CHANGE_SEVERITY: Final = ActionDefinition(
    "change-severity",
    ChangeSeverity,
    Capability.CHANGE_SEVERITY,
    "Recomputes every clock from the original intake time, keeping banked pauses.",
    check_change_severity,
    change_severity,
    offered_when=lambda t: t.status not in CLOSED_STATES,
    event=EventKind.SEVERITY_CHANGED,
    title="Change severity",
    form=CHANGE_SEVERITY_FORM,
)
