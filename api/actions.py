"""The ticket actions as the HTTP API takes them: one route per action definition.

Each action's request body is its workflow model without `actor`: the acting person is the
API key's principal, so a body never names its own actor. Unknown fields are refused (422),
so a misspelled field is never silently dropped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model, field_validator

from workflows.actions.base import ACTIONS, ActionDefinition, ActionModel
from workflows.models import Principal
from workflows.text import check_visible


@functools.cache
def action_body(action: type[BaseModel]) -> type[BaseModel]:
    """`action`'s fields but `actor`, as a strict request body named `<Action>Body`. Its text
    fields also refuse text that is only whitespace (`VisibleText`): a person's comment, note or
    reason must say something. The workflow's own model keeps its recorded text as it is."""
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in action.model_fields.items() if name != "actor"
    }
    texts = [name for name, (annotation, _) in fields.items() if _is_text(annotation)]
    validators = {"_visible": field_validator(*texts)(_visible)} if texts else {}
    return create_model(
        f"{action.__name__}Body",
        __config__=ConfigDict(extra="forbid"),
        __doc__=action.__doc__,
        __validators__=validators,
        **fields,
    )


def _is_text(annotation: Any) -> bool:
    return (
        annotation is str
        or str in get_args(annotation)
        or any(
            get_origin(arg) is Annotated and get_args(arg)[0] is str
            for arg in (annotation, *get_args(annotation))
        )
    )


def _visible(value: Any) -> Any:
    return check_visible(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ActionRoute:
    """One action as a route: its workflow update name, its model, its body, and what the route
    says. Made from the action's one definition (workflows/actions/)."""

    update: str
    model: type[ActionModel]
    summary: str

    @classmethod
    def of(cls, definition: ActionDefinition[Any]) -> ActionRoute:
        return cls(definition.update, definition.model, definition.summary)

    @property
    def body(self) -> type[BaseModel]:
        return action_body(self.model)

    def action(self, body: BaseModel, principal: Principal) -> ActionModel:
        return self.model.model_validate({**body.model_dump(), "actor": principal})


def action_routes() -> tuple[ActionRoute, ...]:
    """A route per registered action the API routes, in the registry's order."""
    return tuple(ActionRoute.of(definition) for definition in ACTIONS if definition.routed)


def action_route(update: str) -> ActionRoute | None:
    definition = ACTIONS.get(update)
    return ActionRoute.of(definition) if definition is not None and definition.routed else None
