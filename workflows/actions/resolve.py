"""The `resolve` action. Resolve the ticket."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks
from workflows.actions.base import (
    CONFLICT,
    ActionDefinition,
    ActionModel,
    FormField,
    Refusal,
)
from workflows.actions.lines import (
    acknowledging_lines,
    end_wait,
)
from workflows.enums import (
    CLOSED_STATES,
    Audience,
    ClockKind,
    ClockStatus,
    EventKind,
    PageAction,
    TicketStatus,
)
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Resolve",
    form=(FormField("resolution", "Resolution", required=True),),
)
