"""The ticket actions as the HTTP API takes them: one route per action definition.

Each action's request body is its workflow model without `actor`: the acting person is the
API key's principal, so a body never names its own actor. Unknown fields are refused (422),
so a misspelled field is never silently dropped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final, cast

from pydantic import BaseModel, ConfigDict, create_model

from workflows.actions import ACTIONS, ActionDefinition, ActionModel, TicketAction
from workflows.models import Principal


@functools.cache
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
    """One action as a route: its workflow update name, its model, its body, and what the route
    says. Made from the action's one definition (workflows/actions.py)."""

    update: str
    model: type[ActionModel]
    summary: str

    @classmethod
    def of(cls, definition: ActionDefinition[Any]) -> ActionRoute:
        return cls(definition.update, definition.model, definition.summary)

    @property
    def body(self) -> type[BaseModel]:
        return action_body(self.model)

    def action(self, body: BaseModel, principal: Principal) -> TicketAction:
        return cast(TicketAction, self.model.model_validate({**body.model_dump(), "actor": principal}))


ACTION_ROUTES: Final[tuple[ActionRoute, ...]] = tuple(ActionRoute.of(definition) for definition in ACTIONS)
