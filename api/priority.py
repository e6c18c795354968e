"""A ticket's place in Temporal's task queues (DESIGN.md §10): Fairness keyed by its customer,
and Priority for a ticket a person is acting on.

In a storm, thousands of tickets' deadlines queue workflow tasks and activities on the same task
queue as a person's comment or acknowledgement. Temporal dispatches a queue by priority key
(1 first, 3 when unset, 5 last), and within a key takes the fairness keys in turn. Intake starts
every ticket on the default key with its customer as the fairness key (`ticket_priority`).

A ticket a person acts on through the API or the console is raised to key 1, before or after
the action (below). What is queued for it (the raise moves those tasks too) and every later step
of the ticket are then dispatched ahead of the storm's background work, which stays on the
default key. The mark stays: a ticket a person has acted on is in a person's hands. Such tickets
are few in a storm, since people act on one ticket at a time.

The raise is Temporal's `UpdateWorkflowExecutionOptions`, which writes one
`WorkflowExecutionOptionsUpdated` event to the ticket's history: nothing the workflow reads, so
its decisions and its record do not change. A refused request (404, 403, 409, 422) must still
write nothing, so the raise comes before the action only where the API knows the ticket's
validator will accept it, and otherwise after the action has been applied:

- Before (`raise_before`), for a ticket nothing has happened to yet: its first workflow task has
  not started, so its state is its pinned input through the pure machine (`untouched_state`),
  and `machine.validate` there says what the validator will say. This is the ticket filed
  during a storm whose first task waits behind the storm's: the raise moves that task up. (A
  race remains: another request on the same untouched ticket, or a deadline falling due before
  its first task runs, may change the state first, and a refusal then leaves the raise. No
  other case does.)
- After (`RaiseAfter`), for any other ticket. The price: the first workflow task of the
  first action on a ticket that has already run goes on the default key; from then on the ticket
  is on key 1.

A ticket already on key 1 is not raised again. The raise is best effort: if the server refuses
it, the action is applied at the ticket's own priority.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import Priority
from temporalio.service import RPCError

from workflows import machine
from workflows import search_attributes as sa
from workflows.actions.base import ActionModel, Refusal
from workflows.models import TicketOpened, TicketState

log = logging.getLogger("escalator.priority")

# Temporal's priority keys run 1 (first) to 5; an unset key is 3. A person's ticket goes first.
PERSON_PRIORITY_KEY = 1
FAIRNESS_KEY_BYTES = 64


def ticket_priority(customer_id: str) -> Priority:
    """A ticket's place at intake: Temporal's Fairness, keyed by its customer. Its workflow tasks,
    and the activities that inherit the key, take turns with other customers' instead of queueing
    behind them, so one customer's storm of deadlines does not hold back another customer's
    deadlines. A key is at most 64 bytes: a longer customer id is keyed by its digest."""
    key = customer_id if len(customer_id.encode()) <= FAIRNESS_KEY_BYTES else _digest_key(customer_id)
    return Priority(fairness_key=key)


def person_priority(customer_id: str) -> PriorityProto:
    """The whole priority of a ticket a person acts on: key 1, and still its customer's fairness
    key (an override replaces the priority whole, so the key must be sent again)."""
    return PriorityProto(
        priority_key=PERSON_PRIORITY_KEY, fairness_key=ticket_priority(customer_id).fairness_key or ""
    )


def _digest_key(customer_id: str) -> str:
    return "sha256:" + hashlib.sha256(customer_id.encode()).hexdigest()[:32]


async def set_priority(client: Client, workflow_id: str, priority: PriorityProto) -> None:
    """Override a running workflow's priority: its tasks from now on, and those queued, use it."""
    await client.workflow_service.update_workflow_execution_options(
        UpdateWorkflowExecutionOptionsRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            workflow_execution_options=WorkflowExecutionOptions(priority=priority),
            update_mask=FieldMask(paths=["priority"]),
        )
    )


@dataclass(frozen=True)
class RaiseAfter:
    """A ticket to raise once its action has been applied: one not known beforehand to accept it."""

    workflow_id: str
    customer_id: str

    async def now(self, client: Client) -> bool:
        return await _raise(client, self.workflow_id, self.customer_id)


async def _raise(client: Client, workflow_id: str, customer_id: str) -> bool:
    """Best effort: whether the ticket is raised now."""
    try:
        await set_priority(client, workflow_id, person_priority(customer_id))
    except RPCError as err:
        log.warning("ticket %s stays on its own priority: %s", workflow_id, err.message)
        return False
    return True


# A ticket nothing has happened to yet: its start, its first workflow task scheduled, and perhaps
# a raise. Anything else (a task started, a signal, an update) and its state is the worker's.
UNTOUCHED = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED,
    }
)


async def untouched_state(client: Client, handle: WorkflowHandle[Any, Any]) -> TicketState | None:
    """The state of a ticket whose first workflow task has not started: its pinned input through
    the pure machine, as the workflow's `__init__` makes it, so the state its first task will
    validate an action against. None for any other ticket."""
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id),
            maximum_page_size=len(UNTOUCHED) + 1,
        )
    )
    events = list(response.history.events)
    if response.next_page_token or not events or any(e.event_type not in UNTOUCHED for e in events):
        return None
    started = events[0].workflow_execution_started_event_attributes
    if started.continued_execution_run_id:
        return None
    [opened] = await client.data_converter.decode(started.input.payloads, [TicketOpened])
    if not isinstance(opened, TicketOpened):
        return None
    return opened.carried_state or machine.open_ticket(opened).state


async def raise_before(
    client: Client, handle: WorkflowHandle[Any, Any], action: ActionModel
) -> RaiseAfter | None:
    """Raise the ticket before a person's action is sent if it is untouched and the pure machine
    says its validator will accept the action: its first workflow task, which the action waits
    for (behind a storm's, for a ticket filed during one), then goes first as well. Otherwise
    what to raise once the action has been applied (so a refused request still writes nothing),
    or None: nothing to raise (raised already, missing or closed: the action answers for those)."""
    try:
        description = await handle.describe()
    except RPCError:
        return None
    if description.raw_description.workflow_execution_info.priority.priority_key == PERSON_PRIORITY_KEY:
        return None
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    after = RaiseAfter(handle.id, description.typed_search_attributes.get(sa.CUSTOMER_ID) or "")
    if description.history_length > len(UNTOUCHED):
        return after
    try:
        state = await untouched_state(client, handle)
    except Exception as err:  # best effort: a person's action never fails for its priority
        log.warning("ticket %s not judged before its action: %s", handle.id, err)
        return after
    if state is None:
        return after
    try:
        machine.validate(state, action, datetime.now(UTC))
    except Refusal:
        return after
    return None if await _raise(client, handle.id, after.customer_id) else after
