"""HTML form fields to the API's request bodies: each action's form description
(workflows/actions/base.py `FormField`) says how its text becomes the body the API takes.

A form sends strings; an empty field is left out, so an optional field keeps its default and
a required one is reported missing, as the API would report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from api.actions import action_route
from api.errors import describe_validation
from workflows.actions.base import ACTIONS, FormField, integer, utc_time

# The filing form (not an action) reads these the way the action forms' fields say.
_FILING_FIELDS: dict[str, FormField] = {
    name: FormField(name, name, parse=parse)
    for name, parse in (
        ("severity", integer),
        ("outage_started_at", utc_time),
        ("outage_ended_at", utc_time),
    )
}


class FormInvalid(ValueError):
    """A form the body model refuses: `message` names each field and what is wrong with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Form fields that are never part of a body.
_FORM_ONLY = frozenset({"csrf_token", "idempotency_key"})


def form_fields(
    form: Mapping[str, Any], described: Mapping[str, FormField] = _FILING_FIELDS
) -> dict[str, Any]:
    """The form's non-empty text fields, converted as their description says; any other field
    goes through as it is, for the body model to refuse."""
    fields: dict[str, Any] = {}
    for name, raw in form.items():
        if name in _FORM_ONLY or not isinstance(raw, str) or not raw.strip():
            continue
        field = described.get(name)
        key, value = field.value(raw) if field is not None else (name, raw)
        fields[key] = value
    return fields


def parse(model: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise FormInvalid(describe_validation([dict(e) for e in err.errors()])) from None


def action_body(update: str, form: Mapping[str, Any]) -> BaseModel:
    """The action's request body from its form; FormInvalid says what to fix."""
    definition, route = ACTIONS.get(update), action_route(update)
    assert definition is not None and route is not None
    described = {field.name: field for field in definition.form}
    return parse(route.body, form_fields(form, described))
