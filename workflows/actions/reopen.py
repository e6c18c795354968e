"""The `reopen` action. Reopen a resolved ticket."""

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
from workflows.enums import ClockKind, ClockStatus, EventKind, TicketStatus
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Reopen",
    form=(FormField("reason", "Reason", required=True),),
)
