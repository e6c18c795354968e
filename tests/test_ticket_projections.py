"""A ticket's projections (state -> view -> read-model row and its column -> API schema) come
from one declaration.

A field is declared once, on the base that says where it is shown (workflows/models.py
`TicketCore`, `TicketShown`, `TicketViewed`, `TicketComputed`); the state, the view, the row
and the API answer subclass those, the tickets table makes the row's columns from their types
(store/db.py `add_columns`), and `TicketState.row()`, `TicketState.view()`, `TicketPublic.of`
and the upsert copy by name. These tests hold that together, and one adds a field with one
line to a copy of the code and follows it everywhere. Plain: no Temporal; SQLite only where
the row is written.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateColumn

import store.db
from api.schemas import ANSWERED_ORDER, TermsPublic, TicketPublic, derived_fields
from store.db import Ticket, column_for
from tests.factories import DEMO_TERMS, opened_ticket
from workflows import machine
from workflows.models import (
    RECORDED_ORDER,
    TicketComputed,
    TicketCore,
    TicketRow,
    TicketShown,
    TicketState,
    TicketView,
    TicketViewed,
)
from workflows.terms import Terms

ROOT = Path(__file__).resolve().parent.parent
TICKETS = cast(Table, Ticket.__table__)

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


def test_where_a_field_is_declared_says_where_it_is_shown() -> None:
    models = (TicketState, TicketView, TicketRow, TicketPublic)
    state, view, row, public = (set(model.model_fields) for model in models)
    columns = set(TICKETS.columns.keys())
    core = set(TicketCore.model_fields)
    shown = set(TicketShown.model_fields) - core
    viewed = set(TicketViewed.model_fields) - core - shown
    computed = set(TicketComputed.model_fields)
    api_derived = set(derived_fields(a_ticket("acme").view()))

    assert core <= state & view & row & public & columns
    assert shown <= state & view & public
    assert viewed <= state & view
    assert not (shown | viewed) & row
    # The API shows the view's clocks its own way (ClockPublic), never the view's own shape.
    assert viewed & public <= api_derived
    assert computed <= row & public & columns
    for name in computed:
        assert isinstance(getattr(TicketState, name), property), name
        assert isinstance(getattr(TicketView, name), property), name


@pytest.mark.parametrize(
    ("model", "order"),
    [
        (TicketState, RECORDED_ORDER),
        (TicketView, RECORDED_ORDER),
        (TicketRow, RECORDED_ORDER),
        (TicketPublic, ANSWERED_ORDER),
    ],
)
def test_payloads_and_answers_keep_the_order_they_had_before_their_fields_moved_to_the_bases(
    model: type[Any], order: tuple[str, ...]
) -> None:
    """Recorded records rebuild byte for byte (tests/test_changes.py), answers read as before."""
    fields = list(model.model_fields)
    kept = [name for name in order if name in fields]
    assert fields[: len(kept)] == kept


def ddl(column: Column[Any]) -> list[str]:
    return [str(CreateColumn(column).compile(dialect=d)) for d in (sqlite.dialect(), postgresql.dialect())]


def test_each_row_column_is_made_from_its_fields_type_unless_the_table_declares_it() -> None:
    # A column the table declares says what the type cannot (the key, another length), and
    # agrees with the field on the rest.
    declared = set(Ticket.__annotations__) & set(TicketRow.model_fields)
    assert "ticket_id" in declared
    for name, field in TicketRow.model_fields.items():
        made, column = column_for(name, field), TICKETS.c[name]
        if name in declared:
            assert (column.nullable, column.type.python_type) == (made.nullable, made.type.python_type), name
        else:
            assert ddl(column) == ddl(made), name
    # Enums by their value, nullable only where the field may be None, the default the server's too.
    assert ddl(TICKETS.c.product) == ["product VARCHAR(32) NOT NULL"] * 2
    assert ddl(TICKETS.c.severity) == ["severity INTEGER NOT NULL"] * 2
    assert ddl(TICKETS.c.partner_id) == ["partner_id VARCHAR(200)"] * 2
    assert ddl(TICKETS.c.partner_sla_breached) == [
        "partner_sla_breached BOOLEAN DEFAULT 0 NOT NULL",
        "partner_sla_breached BOOLEAN DEFAULT false NOT NULL",
    ]


def class_named(module: ast.Module, name: str) -> ast.ClassDef:
    (found,) = (node for node in module.body if isinstance(node, ast.ClassDef) and node.name == name)
    return found


def test_the_types_the_checker_sees_for_made_columns_are_the_columns_types() -> None:
    """store/db.py types the made columns the queries name under `if TYPE_CHECKING:`, which
    never runs: read from the source, each must be its column's type."""
    module = ast.parse(Path(store.db.__file__).read_text())
    ticket = class_named(module, "Ticket")
    (block,) = (n for n in ticket.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    annotated = (n for n in block.body if isinstance(n, ast.AnnAssign))
    typed = {ast.unparse(n.target): ast.unparse(n.annotation) for n in annotated}
    assert typed
    for name, annotation in typed.items():
        column = TICKETS.c[name]
        # A TypeDecorator (UTCDateTime) stores its impl's type.
        python_type = getattr(column.type, "impl", column.type).python_type.__name__
        assert annotation == f"Mapped[{python_type}{' | None' if column.nullable else ''}]", name


# Run against a copy of the code that has one more line on TicketCore and nothing else.
FOLLOW_THE_NEW_FIELD = """
import asyncio, json, sys
from datetime import UTC, datetime
from api.schemas import ANSWERED_ORDER, TicketPublic
from store.db import Base, Ticket, make_engine, make_sessionmaker
from store.tickets import get_ticket_row, upsert_ticket_row
from tests.factories import opened_ticket
from workflows import machine
from workflows.models import RECORDED_ORDER

received = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
state = machine.open_ticket(opened_ticket("acme", 2, received)).state
before = state.incident_ref
state.incident_ref = "INC-7"

async def stored() -> str | None:
    engine = make_engine(sys.argv[1])
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with make_sessionmaker(engine)() as session:
        await upsert_ticket_row(session=session, row=state.row(received))
        await session.commit()
        row = await get_ticket_row(session=session, ticket_id=state.ticket_id)
    await engine.dispose()
    return row.incident_ref if row else None

column = Ticket.__table__.c.incident_ref
print(json.dumps({
    "before": before,
    "view": state.view().incident_ref,
    "row": state.row(received).incident_ref,
    "public": TicketPublic.of(state).model_dump(mode="json")["incident_ref"],
    "openapi": TicketPublic.model_json_schema()["properties"]["incident_ref"],
    "column": [str(column.type), column.nullable],
    "stored": asyncio.run(stored()),
    # After the fields every recorded payload and answer already had, in their order.
    "after_the_recorded": [
        keys.index("incident_ref") > max(keys.index(name) for name in order if name in keys)
        for keys, order in (
            (list(json.loads(model.model_dump_json())), order)
            for model, order in (
                (state, RECORDED_ORDER),
                (state.view(), RECORDED_ORDER),
                (state.row(received), RECORDED_ORDER),
                (TicketPublic.of(state), ANSWERED_ORDER),
            )
        )
    ],
}))
"""


def with_a_new_core_field(tree: Path, line: str) -> None:
    """Copy the code under test into `tree` and add `line` to the body of TicketCore."""
    for package in ("workflows", "policies", "activities", "store", "runtime", "sinks", "api", "worker"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "tests").mkdir()
    for name in ("__init__.py", "factories.py"):
        shutil.copy(ROOT / "tests" / name, tree / "tests" / name)
    models = tree / "workflows" / "models.py"
    lines = models.read_text().splitlines(keepends=True)
    core = class_named(ast.parse("".join(lines)), "TicketCore")
    assert core.end_lineno is not None
    lines.insert(core.end_lineno, line)
    models.write_text("".join(lines))


def test_a_field_declared_once_reaches_the_view_the_row_its_column_the_database_and_the_api(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    with_a_new_core_field(tree, "    incident_ref: str | None = None\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    database = f"sqlite+aiosqlite:///{tmp_path / 'read-model.db'}"
    run = subprocess.run(
        [sys.executable, "-c", FOLLOW_THE_NEW_FIELD, database],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    followed = json.loads(run.stdout)
    assert followed == {
        "before": None,
        "view": "INC-7",
        "row": "INC-7",
        "public": "INC-7",
        "openapi": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": None,
            "title": "Incident Ref",
        },
        "column": ["VARCHAR(200)", True],
        "stored": "INC-7",
        "after_the_recorded": [True] * 4,
    }
