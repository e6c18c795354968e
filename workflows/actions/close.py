"""The `close` action. Close the ticket."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks
from workflows.actions.base import (
    INVALID,
    ActionDefinition,
    ActionModel,
    Refusal,
    note_field,
)
from workflows.actions.lines import (
    binding_clocks_to_stop,
    end_wait,
)
from workflows.clocks import CLOCK_NAMES
from workflows.enums import ClockStatus, EventKind, PageAction, Role, TicketStatus
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Close",
    titles={Role.CUSTOMER: "Withdraw (close)"},
    form=note_field("Reason (needed while an SLA clock is still open)"),
)
