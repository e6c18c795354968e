"""The ticket actions as the HTTP API takes them: one entry per action.

Each action's request body is its workflow model without `actor`: the acting person is the
API key's principal, so a body never names its own actor. Unknown fields are refused (422),
so a misspelled field is never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, create_model

from workflows.models import (
    Acknowledge,
    ChangeSeverity,
    Close,
    Comment,
    Escalate,
    Handback,
    Handoff,
    Principal,
    Reopen,
    Resolve,
    Resume,
    TicketAction,
    WaitOnCustomer,
)


def action_body(action: type[BaseModel]) -> type[BaseModel]:
    """`action`'s fields but `actor`, as a strict request body named `<Action>Body`."""
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in action.model_fields.items() if name != "actor"
    }
    return create_model(
        f"{action.__name__}Body",
        __config__=ConfigDict(extra="forbid"),
        __doc__=action.__doc__,
        **fields,
    )


@dataclass(frozen=True)
class ActionRoute:
    """One action: its workflow update name, its model, its body, and what the route says."""

    update: str
    model: type[TicketAction]
    summary: str

    @property
    def body(self) -> type[BaseModel]:
        return _BODIES[self.model]

    def action(self, body: BaseModel, principal: Principal) -> TicketAction:
        return self.model.model_validate({**body.model_dump(), "actor": principal})


ACTION_ROUTES: Final[tuple[ActionRoute, ...]] = (
    ActionRoute(
        "acknowledge",
        Acknowledge,
        "First response, or acknowledgement of an escalation, by the principal's own line.",
    ),
    ActionRoute(
        "comment",
        Comment,
        "A public comment, or an internal note (`public: false`). Only the owning line's public "
        "comment counts as the customer update.",
    ),
    ActionRoute("escalate", Escalate, "Climb the ladder, naming a trigger of the target level."),
    ActionRoute("handoff", Handoff, "The partner's first line hands off to ConnectSoft's second line."),
    ActionRoute("handback", Handback, "ConnectSoft hands the ticket back to the partner, with a note."),
    ActionRoute(
        "change-severity",
        ChangeSeverity,
        "Recomputes every clock from the original intake time, keeping banked pauses.",
    ),
    ActionRoute("wait-on-customer", WaitOnCustomer, "Pause the resolution clock until the customer answers."),
    ActionRoute("resume", Resume, "Work goes on; paused clocks run again."),
    ActionRoute("resolve", Resolve, "Resolve the ticket; it closes by itself 7 days later."),
    ActionRoute("reopen", Reopen, "Reopen a resolved ticket."),
    ActionRoute(
        "close",
        Close,
        "Close the ticket (a customer withdraws its own). With a live SLA clock, say why in `note`.",
    ),
)

_BODIES: Final[dict[type[BaseModel], type[BaseModel]]] = {
    route.model: action_body(route.model) for route in ACTION_ROUTES
}
