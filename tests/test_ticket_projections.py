"""A ticket's three projections (state -> read-model row -> API schema) read one source.

`TicketState.row()`, `TicketState.view()` and `TicketPublic.of` copy every field by name from
the ticket (workflows/models.py `_TicketFields`); only the API's derived fields are written
out. These tests hold the field sets together, so a field shown in one place and not another
is a decision, not an oversight. Plain and fast: no Temporal, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.schemas import TermsPublic, TicketPublic, derived_fields
from store.db import Ticket
from tests.factories import DEMO_TERMS, opened_ticket
from workflows import machine
from workflows.models import TicketRow, TicketState, TicketView
from workflows.terms import Terms

RECEIVED = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
# The row's fields the API shows in the ticket's terms rather than beside them, and the one
# it does not show (the read model's own bookkeeping).
ROW_FIELDS_IN_TERMS = {"contract_id", "policy_version"}
ROW_ONLY = {"updated_at"}
# The clock the console's queue orders by and counts down (TicketState.next_clock): the API
# answers every clock instead, the row carries the one the queue needs.
ROW_ONLY |= {name for name in TicketRow.model_fields if name.startswith("next_clock_")}


def a_ticket(customer_id: str) -> TicketState:
    state = machine.open_ticket(opened_ticket(customer_id, 2, RECEIVED)).state
    # A day on: the first response clock has breached, so the flags are not all at rest.
    return machine.advance(state, RECEIVED + timedelta(hours=30)).state


def as_json(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json"))


def test_the_row_is_a_column_of_the_read_model_each() -> None:
    columns = set(Ticket.__table__.columns.keys())
    assert set(TicketRow.model_fields) <= columns


def test_every_row_field_is_in_the_api_answer_under_the_same_name() -> None:
    row = set(TicketRow.model_fields) - ROW_ONLY
    assert row - ROW_FIELDS_IN_TERMS <= set(TicketPublic.model_fields)
    assert ROW_FIELDS_IN_TERMS <= set(TermsPublic.model_fields)


def test_the_view_and_its_terms_are_fields_of_the_state_and_its_entitlement() -> None:
    state = a_ticket("acme")
    assert set(TicketView.model_fields) - {"terms"} <= set(TicketState.model_fields)
    assert set(Terms.model_fields) <= set(type(state.entitlement).model_fields)
    assert set(TermsPublic.model_fields) <= set(Terms.model_fields)


def test_the_api_fields_are_the_tickets_own_or_derived() -> None:
    view = a_ticket("acme").view()
    derived = set(derived_fields(view))
    own = set(TicketPublic.model_fields) - derived
    assert derived <= set(TicketPublic.model_fields)
    assert all(hasattr(view, name) for name in own)


@pytest.mark.parametrize("customer_id", sorted(DEMO_TERMS))
def test_a_field_has_the_same_value_in_the_state_the_row_the_view_and_the_api(customer_id: str) -> None:
    state = a_ticket(customer_id)
    updated = RECEIVED + timedelta(days=2)
    row, view = as_json(state.row(updated)), as_json(state.view())
    public = as_json(TicketPublic.of(state))
    assert public == as_json(TicketPublic.of(state.view()))
    state_json = as_json(state)
    for name, value in row.items():
        if name in ROW_ONLY:
            continue
        expected = public["terms"][name] if name in ROW_FIELDS_IN_TERMS else public[name]
        assert value == expected, name
        if name in state_json:
            assert value == state_json[name], name
    for name, value in view.items():
        if name != "terms":
            assert value == state_json[name], name
        if name in public and name not in derived_fields(state.view()):
            assert value == public[name], name
    for name, value in view["terms"].items():
        assert value == state_json["entitlement"][name], name
