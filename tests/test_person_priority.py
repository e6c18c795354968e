"""A person's action goes ahead of the storm's background work (DESIGN.md §10, issue 18).

A ticket a person acts on through the API or the console is raised to Temporal's priority key 1
(api/priority.py): before the action if nothing has happened to it yet and the pure machine
accepts the action, otherwise once the action has been applied. The tasks already queued for it
and every later step are then dispatched before the storm's, which run on the default key 3.

The dispatch test builds the backlog a storm makes on a task queue nobody polls yet, on a dev
server with one partition per queue (tests/fixtures_temporal.py `one_partition_env`), and raises
one workflow queued behind it. The API tests check when a ticket is raised, and that a refused
request still changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from api.priority import PERSON_PRIORITY_KEY, person_priority, raise_before, set_priority, untouched_state
from tests.factories import opened_ticket
from tests.fixtures_api import Stack, history_types, wait_until_quiet
from tests.test_blank_text import TICKET
from tests.test_fairness import BACKLOG, FairnessProbe, one_at_a_time, queue_storm, ran, until_queued
from workflows import machine
from workflows import search_attributes as sa
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.comment import Comment
from workflows.enums import Role
from workflows.models import Principal, workflow_id_for
from workflows.ticket import TicketWorkflow

# Raised, it runs among the first; FIFO would run it 301st, as it runs the control.
FIRST_WITHIN = 5
SUPPORT, CUSTOMER = "dev-support", "dev-customer-acme"
RAISED = EventType.Name(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED)
UPDATE_ACCEPTED = EventType.Name(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)


async def test_a_raised_workflow_goes_ahead_of_a_backlog_queued_before_it(
    one_partition_env: WorkflowEnvironment,
) -> None:
    client = one_partition_env.client
    queue = f"priority-{uuid.uuid4().hex[:8]}"
    ran.clear()
    await queue_storm(client, queue)
    person = await client.start_workflow(FairnessProbe.run, "person", id=f"{queue}-person", task_queue=queue)
    control = await client.start_workflow(
        FairnessProbe.run, "control", id=f"{queue}-control", task_queue=queue
    )
    # Every task is in matching before the raise, so the raise moves a task already queued.
    await until_queued(client, queue, BACKLOG + 2)
    await set_priority(client, person.id, person_priority("acme"))
    described = await person.describe()
    assert described.raw_description.workflow_execution_info.priority.priority_key == PERSON_PRIORITY_KEY
    async with one_at_a_time(client, queue):
        assert await person.result() == "person"
        assert await control.result() == "control"
    # The control, queued after it on the default key, waited behind the whole backlog.
    assert ran.index("control") > BACKLOG // 2, f"control ran after {ran.index('control')}: no backlog"
    assert ran.index("person") < FIRST_WITHIN, f"the raised workflow ran after {ran.index('person')}"


async def file(stack: Stack, customer_id: str) -> str:
    answer = await stack.http.post(
        "/tickets", json={**TICKET, "customer_id": customer_id}, headers=stack.as_(SUPPORT)
    )
    assert answer.status_code == 201, answer.text
    ticket_id: str = answer.json()["ticket_id"]
    await wait_until_quiet(stack.handle(ticket_id))
    return ticket_id


async def test_a_persons_action_raises_its_ticket_once_keeping_its_customers_fairness_key(
    stack: Stack,
) -> None:
    ticket_id = await file(stack, "globex")
    handle = stack.handle(ticket_id)
    filed = (await handle.describe()).raw_description.workflow_execution_info.priority
    assert filed.priority_key == 0 and filed.fairness_key == "globex"  # 0: unset, the default key 3

    for action, body in [("comment", {"body": "Looking at it"}), ("acknowledge", {})]:
        answer = await stack.http.post(
            f"/tickets/{ticket_id}/{action}", json=body, headers=stack.as_(SUPPORT)
        )
        assert answer.status_code == 200, answer.text
    raised = (await handle.describe()).raw_description.workflow_execution_info.priority
    assert raised.priority_key == PERSON_PRIORITY_KEY and raised.fairness_key == "globex"
    # Raised by the first action only, once it was applied; the second found it raised.
    types = await history_types(handle)
    assert types.count(RAISED) == 1
    assert types.index(RAISED) > types.index(UPDATE_ACCEPTED)


async def test_a_refused_action_raises_nothing_and_writes_nothing(stack: Stack) -> None:
    """Out of reach (404), forbidden to the role (403), or refused by the ticket's state (409:
    the customer may resume its ticket, but this one waits on nobody): the raise comes only
    after the action was applied, so none of them leaves anything in the history."""
    foreign = await file(stack, "globex")
    own = await file(stack, "acme")
    for ticket_id, action, body, status in [
        (foreign, "comment", {"body": "hello"}, 404),
        (own, "acknowledge", {}, 403),
        (own, "resume", {}, 409),
    ]:
        handle = stack.handle(ticket_id)
        before = await history_types(handle)
        answer = await stack.http.post(
            f"/tickets/{ticket_id}/{action}", json=body, headers=stack.as_(CUSTOMER)
        )
        assert answer.status_code == status, (action, answer.text)
        assert await history_types(handle) == before, action
        priority = (await handle.describe()).raw_description.workflow_execution_info.priority
        assert priority.priority_key != PERSON_PRIORITY_KEY, action


async def test_an_untouched_ticket_is_raised_before_an_action_its_validator_will_accept(
    dev_env: WorkflowEnvironment,
) -> None:
    """A ticket whose first workflow task has not run (here: nobody polls its queue, as in a
    storm's backlog) has the state its pinned input makes: the action it will accept raises it
    before it is sent, the one it will refuse does not, and leaves the history as it was."""
    client = dev_env.client
    opened = opened_ticket("acme", 3, datetime.now(UTC))
    initial = machine.open_ticket(opened).state
    handle = await client.start_workflow(
        TicketWorkflow.run,
        opened,
        id=workflow_id_for(opened.ticket_id),
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        search_attributes=sa.for_ticket(initial),
    )
    try:
        assert await untouched_state(client, handle) == initial
        before = await history_types(handle)
        customer = Principal(role=Role.CUSTOMER, name="acme", customer_id="acme")
        # 403 to come: left to raise after the action, which will not be applied.
        assert await raise_before(client, handle, Acknowledge(actor=customer)) is not None
        assert await history_types(handle) == before
        assert await raise_before(client, handle, Comment(actor=customer, body="More logs attached")) is None
        assert await history_types(handle) == [*before, RAISED]
        raised = (await handle.describe()).raw_description.workflow_execution_info.priority
        assert raised.priority_key == PERSON_PRIORITY_KEY and raised.fairness_key == "acme"
        # Raised already: nothing more to write.
        assert await raise_before(client, handle, Comment(actor=customer, body="And these")) is None
        assert (await history_types(handle)).count(RAISED) == 1
    finally:
        await handle.terminate("test over")


async def test_a_ticket_that_has_run_is_not_judged_from_its_input(stack: Stack) -> None:
    ticket_id = await file(stack, "globex")
    assert await untouched_state(stack.client, stack.handle(ticket_id)) is None
