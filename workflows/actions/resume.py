"""The `resume` action. Work resumes after a wait on the customer."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks
from workflows.actions.base import (
    CONFLICT,
    ActionDefinition,
    ActionModel,
    Refusal,
    note_field,
)
from workflows.actions.lines import (
    end_wait,
)
from workflows.enums import ClockStatus, EventKind, TicketStatus
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Resume",
    form=note_field(),
)
