"""The `acknowledge` action: first response, or acknowledgement of an escalation, by the
principal's own line."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks
from workflows.actions.base import (
    CONFLICT,
    ActionDefinition,
    ActionModel,
    Refusal,
    RefusalKind,
    note_field,
)
from workflows.actions.lines import (
    answering_line,
    clocks_acknowledged_by,
)
from workflows.clocks import CLOCK_NAMES, RESPONSE_CLOCKS
from workflows.enums import (
    CLOSED_STATES,
    Audience,
    ClockKind,
    ClockStatus,
    EventKind,
    OwningLine,
    PageAction,
    Role,
    TicketStatus,
)
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    who = line.subject
    if line in state.acknowledged_lines:
        raise Refusal(
            CONFLICT,
            f"{who} has already acknowledged this ticket and none of its clocks awaits acknowledgement.",
        )
    if not any(c.kind in RESPONSE_CLOCKS and c.owner == line for c in state.clocks):
        raise Refusal(CONFLICT, f"{who} has no response clock on this ticket; add a comment instead.")


def responded(step: Step, answered: list[OwningLine]) -> bool:
    """These lines have responded: True when it is the first response of the line that owns
    the ticket, which acknowledges it and starts its periodic updates."""
    state = step.state
    for each in answered:
        if each not in state.acknowledged_lines:
            state.acknowledged_lines.append(each)
    first = state.acknowledged_at is None and state.owning_line in answered
    if first:
        state.acknowledged_at = step.now
        if state.status == TicketStatus.OPEN:
            state.status = TicketStatus.ACKNOWLEDGED
        clocks.start_periodic_update(step)
    return first


def acknowledge(step: Step, action: Acknowledge) -> None:
    state, actor = step.state, action.actor
    line = answering_line(state, actor)
    stopped = clocks_acknowledged_by(state, actor)
    for clock in stopped:
        clocks.stop(step, clock, ClockStatus.MET)
    answered = [line, *(c.owner for c in stopped)]
    first = responded(step, answered)
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
    title="Acknowledge",
    form=note_field(),
)
