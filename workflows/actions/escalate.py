"""The `escalate` action. Climb the ladder, naming a trigger of the target level."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import ladder
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
    note_field,
)
from workflows.enums import CLOSED_STATES, EscalationTrigger, EventKind, OwningLine
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.policy import rules_for
from workflows.text import CleanText
from workflows.timeline import Step


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


def _levels(state: TicketState) -> list[Choice]:
    names = rules_for(state.entitlement.policy_version).level_names
    return [
        Choice(str(level), f"L{level} ({names[level]})")
        for level in range(state.level + 1, state.entitlement.max_level + 1)
    ]


def _triggers(state: TicketState) -> list[Choice]:
    triggers = rules_for(state.entitlement.policy_version).escalation_triggers
    return [
        Choice(trigger.value, trigger.value.replace("_", " "), group=f"L{level}")
        for level in range(state.level + 1, state.entitlement.max_level + 1)
        for trigger in triggers.get(level, ())
    ]


ESCALATE_FORM: Final = (
    FormField("level", "To level", Widget.SELECT, required=True, choices=_levels, parse=integer),
    FormField("trigger", "Trigger", Widget.SELECT, required=True, choices=_triggers),
    *note_field(),
)


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
    title="Escalate",
    form=ESCALATE_FORM,
)
