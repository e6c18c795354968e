"""The `handoff` action. The partner's first line hands the ticket off to ConnectSoft's second line."""

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
    note_field,
)
from workflows.enums import (
    CLOSED_STATES,
    Audience,
    ClockKind,
    EventKind,
    HandoffCategory,
    OwningLine,
    ProductType,
    Severity,
)
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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


HANDOFF_FORM: Final = (
    FormField(
        "category",
        "Category",
        Widget.SELECT,
        required=True,
        choices=lambda state: [Choice(c.value, c.value.replace("_", " ")) for c in HandoffCategory],
    ),
    *note_field(),
)


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
    title="Hand off to ConnectSoft",
    form=HANDOFF_FORM,
)
