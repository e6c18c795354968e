"""A new action, defined in this file alone (issue 15 §2): registering its one definition gives
it the workflow's update (validated) and `<name>-signal` signal, the API's route, its cell of
the permission table and a working console form. Nothing outside this file names it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from pydantic import Field
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment

from api.console.session import csrf_token_for
from tests.factories import SUPPORT
from tests.fixtures_api import Stack, actor_of, console_session_id, recorded_timeline, sqlite_stack
from tests.test_api_permissions import console_as, file_ticket, unchanged_proof
from workflows.actions.base import ACTIONS, ActionDefinition, ActionModel, Choice, FormField, Widget, integer
from workflows.enums import EventKind, Role, TicketStatus, Visibility
from workflows.models import TicketState
from workflows.permissions import Grant
from workflows.text import CleanText
from workflows.ticket import TicketWorkflow
from workflows.timeline import Step

ADMIN, PARTNER, CUSTOMER = "dev-admin", "dev-partner-northwind", "dev-customer-acme"


class Remind(ActionModel):
    """Remind the owning line of an unanswered ticket."""

    note: CleanText = Field(min_length=1, max_length=500)
    urgency: int = Field(default=1, ge=1, le=3)


def check_remind(state: TicketState, action: Remind) -> None:
    """Nothing beyond its precondition: `offered_when` decides when a reminder can apply."""


def remind(step: Step, action: Remind) -> None:
    step.record(
        EventKind.COMMENTED,
        f"Reminder (urgency {action.urgency}): {action.note}",
        actor=str(action.actor),
        visibility=Visibility.PUBLIC.value,
    )


REMIND: ActionDefinition[Remind] = ActionDefinition(
    "remind",
    Remind,
    # No policy document lists "remind": the definition's grants are its permission row.
    "remind",
    "Remind the owning line of an unanswered ticket.",
    check_remind,
    remind,
    event=EventKind.COMMENTED,
    offered_when=lambda state: state.status == TicketStatus.OPEN,
    title="Send a reminder",
    form=(
        FormField("note", "What is still needed", required=True),
        FormField(
            "urgency",
            "Urgency",
            Widget.SELECT,
            choices=lambda state: [Choice(str(n), f"Urgency {n}") for n in (1, 2, 3)],
            parse=integer,
        ),
    ),
    grants={Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES, Role.CUSTOMER: Grant.YES, Role.PARTNER: Grant.NO},
)


@pytest_asyncio.fixture
async def remind_stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """A stack made while `remind` is registered; the registry forgets it afterwards."""
    with ACTIONS.registered(REMIND):
        async with sqlite_stack(dev_env, tmp_path / "api.db") as stack:
            yield stack
    assert ACTIONS.get("remind") is None
    definition = workflow._Definition.must_from_class(TicketWorkflow)
    assert "remind" not in definition.updates and "remind-signal" not in definition.signals


async def reminders(stack: Stack, ticket_id: str) -> list[tuple[str, str | None]]:
    timeline = await recorded_timeline(stack, ticket_id)
    return [(event.summary, event.actor) for event in timeline if event.summary.startswith("Reminder")]


def test_registering_gives_the_workflow_an_update_and_a_signal() -> None:
    with ACTIONS.registered(REMIND):
        definition = workflow._Definition.must_from_class(TicketWorkflow)
        update = definition.updates["remind"]
        assert update.validator is not None and update.arg_types == [Remind]
        assert definition.signals["remind-signal"].arg_types == [Remind]
        assert list(ACTIONS)[-1] is REMIND
    definition = workflow._Definition.must_from_class(TicketWorkflow)
    assert "remind" not in definition.updates and not hasattr(TicketWorkflow, "remind")


async def test_a_new_action_works_end_to_end(remind_stack: Stack) -> None:
    stack = remind_stack
    ticket_id = await file_ticket(stack, "acme")

    # The route, with its body (`actor` is the key's principal) and its permission cell.
    paths = (await stack.http.get("/openapi.json")).json()["paths"]
    assert set(paths["/tickets/{ticket_id}/remind"]["post"]["requestBody"]["content"]) == {"application/json"}
    done = await stack.http.post(
        f"/tickets/{ticket_id}/remind", json={"note": "any news?"}, headers=stack.as_(CUSTOMER)
    )
    assert done.status_code == 200, done.text
    unknown = await stack.http.post(
        f"/tickets/{ticket_id}/remind", json={"note": "x", "actor": "me"}, headers=stack.as_(CUSTOMER)
    )
    assert unknown.status_code == 422

    # The permission cell: the partner's row says no (403); a foreign ticket is not found.
    partner_ticket = await file_ticket(stack, "contoso")
    before = await unchanged_proof(stack, partner_ticket)
    refused = await stack.http.post(
        f"/tickets/{partner_ticket}/remind", json={"note": "hello"}, headers=stack.as_(PARTNER)
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "A partner key may not remind."
    foreign = await stack.http.post(
        f"/tickets/{partner_ticket}/remind", json={"note": "hello"}, headers=stack.as_(CUSTOMER)
    )
    assert foreign.status_code == 404, foreign.text
    assert await unchanged_proof(stack, partner_ticket) == before

    # The signal, for systems that talk to Temporal directly.
    await stack.handle(ticket_id).signal("remind-signal", Remind(actor=SUPPORT, note="ping", urgency=2))

    # The console form: offered while the ticket is open, rendered and parsed from its description.
    page = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(CUSTOMER))
    form = re.search(
        r'<section class="action" aria-labelledby="remind-heading">.*?</section>', page.text, re.S
    )
    assert form, "no reminder form on the page"
    assert "Send a reminder" in form.group(
        0
    ) and '<label for="remind-note">What is still needed' in form.group(0)
    assert re.findall(r'<option value="(\d)">', form.group(0)) == ["1", "2", "3"]
    csrf = csrf_token_for(console_session_id(CUSTOMER))
    posted = await stack.http.post(
        f"/console/tickets/{ticket_id}/remind",
        data={"csrf_token": csrf, "note": "still down", "urgency": "3"},
        headers=console_as(CUSTOMER),
    )
    assert posted.status_code == 303, posted.text
    missing = await stack.http.post(
        f"/console/tickets/{ticket_id}/remind",
        data={"csrf_token": csrf, "urgency": "2"},
        headers=console_as(CUSTOMER),
    )
    assert missing.status_code == 422 and "note: is required." in missing.text

    customer = await actor_of(stack, CUSTOMER)  # customer:acme (key_...)
    assert await reminders(stack, ticket_id) == [
        ("Reminder (urgency 1): any news?", customer),
        ("Reminder (urgency 2): ping", str(SUPPORT)),
        ("Reminder (urgency 3): still down", customer),
    ]

    # Its precondition: once acknowledged, the form is gone and the update is refused (409).
    await stack.http.post(f"/tickets/{ticket_id}/acknowledge", json={}, headers=stack.as_(ADMIN))
    page = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(CUSTOMER))
    assert 'aria-labelledby="remind-heading"' not in page.text
    late = await stack.http.post(
        f"/tickets/{ticket_id}/remind", json={"note": "again"}, headers=stack.as_(CUSTOMER)
    )
    assert late.status_code == 409, late.text
