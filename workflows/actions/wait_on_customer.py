"""The `wait-on-customer` action. Wait on the customer: the resolution clock pauses."""

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
from workflows.enums import CLOSED_STATES, Audience, ClockKind, ClockStatus, EventKind, TicketStatus
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


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
    title="Wait on the customer",
    form=note_field(),
)
