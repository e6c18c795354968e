"""The `handback` action. ConnectSoft hands a handed-off ticket back to the partner."""

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
from workflows.enums import Audience, ClockKind, ClockStatus, EventKind, OwningLine
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Hand back to the partner",
    form=note_field("Note for the partner", required=True),
)
