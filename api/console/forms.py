"""HTML form fields to the API's request bodies: one body model per action, as the API takes it.

A form sends strings; an empty field is left out, so an optional field keeps its default and
a required one is reported missing, as the API would report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from api.actions import ACTION_ROUTES, ActionRoute
from api.errors import describe_validation

ROUTES: Final[dict[str, ActionRoute]] = {route.update: route for route in ACTION_ROUTES}
# Form fields that are never part of a body.
_FORM_ONLY: Final = frozenset({"csrf_token", "idempotency_key", "visibility"})
_INTEGERS: Final = frozenset({"level", "severity"})
# <input type="datetime-local"> sends no zone; the form labels these fields as UTC.
_UTC_TIMES: Final = frozenset({"started_at", "ended_at", "outage_started_at", "outage_ended_at"})


class FormInvalid(ValueError):
    """A form the body model refuses: `message` names each field and what is wrong with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _value(name: str, raw: str) -> Any:
    if name in _INTEGERS and raw.lstrip("-").isdigit():
        return int(raw)
    if name in _UTC_TIMES:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return raw  # the model says what is wrong with it
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return raw


def form_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's non-empty text fields, converted where the body needs numbers or times."""
    fields: dict[str, Any] = {}
    for name, raw in form.items():
        if name in _FORM_ONLY or not isinstance(raw, str) or not raw.strip():
            continue
        fields[name] = _value(name, raw.strip() if name in _INTEGERS | _UTC_TIMES else raw)
    return fields


def parse(model: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise FormInvalid(describe_validation([dict(e) for e in err.errors()])) from None


def action_body(update: str, form: Mapping[str, Any]) -> BaseModel:
    """The action's request body from its form; FormInvalid says what to fix."""
    fields = form_fields(form)
    if update == "comment":
        fields["public"] = form.get("visibility", "public") != "internal"
    return parse(ROUTES[update].body, fields)
