"""The `comment` action. A public comment, or an internal note."""

from __future__ import annotations

from typing import Final

from pydantic import Field

from workflows import clocks
from workflows.actions.base import (
    ActionDefinition,
    ActionModel,
    Choice,
    FormField,
    Widget,
)
from workflows.actions.lines import (
    speaks_for_owning_line,
)
from workflows.enums import ClockKind, ClockStatus, EventKind, Role, Visibility
from workflows.models import TicketState
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


class Comment(ActionModel):
    body: CleanText = Field(min_length=1, max_length=10_000)
    public: bool = True


def visibility_of(action: Comment) -> Visibility:
    if action.public:
        return Visibility.PUBLIC
    return Visibility.PARTNER_INTERNAL if action.actor.role == Role.PARTNER else Visibility.INTERNAL


def anytime_check(state: TicketState, action: Comment) -> None:
    """No check of its own beyond reach, permission and the ticket being open."""


def comment(step: Step, action: Comment) -> None:
    actor = action.actor
    visibility = visibility_of(action)
    kind = {
        Visibility.PUBLIC: "a public comment",
        Visibility.PARTNER_INTERNAL: "a partner-internal note",
        Visibility.INTERNAL: "an internal note",
    }[visibility]
    step.record(
        EventKind.COMMENTED,
        f"{actor} added {kind}: {action.body[:200]}",
        actor=str(actor),
        visibility=visibility.value,
    )
    customer_update(step, action)


def customer_update(step: Step, action: Comment) -> bool:
    """Only the owning line's public word is the customer update; a customer's own comment
    and internal notes never are (DESIGN.md §4). Meets the live periodic update, if any, and
    starts the next; True when the comment counts as the owning line's word."""
    state = step.state
    if not (action.public and speaks_for_owning_line(state, action.actor)):
        return False
    updates = clocks.live(state, ClockKind.PERIODIC_UPDATE)
    for clock in updates:
        clocks.stop(step, clock, ClockStatus.MET)
    if updates:
        clocks.start_periodic_update(step)
    return True


COMMENT_FORM: Final = (
    FormField("body", "Comment", required=True, rows=3),
    FormField(
        "visibility",
        "Who sees it",
        Widget.RADIO,
        choices=lambda state: (
            Choice(Visibility.PUBLIC, "Public comment"),
            Choice(Visibility.INTERNAL, "Internal note"),
        ),
        body_field="public",
        parse=lambda raw: raw != Visibility.INTERNAL,
        needs=Capability.INTERNAL_NOTE,
    ),
)


COMMENT: Final = ActionDefinition(
    "comment",
    Comment,
    Capability.COMMENT,
    "A public comment, or an internal note (`public: false`). Only the owning line's public "
    "comment counts as the customer update.",
    anytime_check,
    comment,
    capability_of=lambda action: Capability.COMMENT if action.public else Capability.INTERNAL_NOTE,
    event=EventKind.COMMENTED,
    title="Comment",
    form=COMMENT_FORM,
)
