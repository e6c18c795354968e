"""A ticket's place in Temporal's task queues (DESIGN.md §10): Fairness keyed by its customer,
and Priority for a ticket a person is acting on.

In a storm, thousands of tickets' deadlines queue workflow tasks and activities on the same task
queue as a person's comment or acknowledgement. Temporal dispatches a queue by priority key
(1 first, 3 when unset, 5 last), and within a key takes the fairness keys in turn. Intake starts
every ticket on the default key with its customer as the fairness key (`ticket_priority`).

When a person's action on a ticket through the API or the console has been applied, the ticket
is raised to key 1 (`raise_for_a_person`). What the action left to do (its activities and the
workflow tasks after them, already queued: the raise moves them too) and every later step of the
ticket are then dispatched ahead of the storm's background work, which stays on the default key.
The mark stays: a ticket a person has acted on is in a person's hands. Such tickets are few in a
storm, since people act on one ticket at a time.

The raise is Temporal's `UpdateWorkflowExecutionOptions`, which writes one
`WorkflowExecutionOptionsUpdated` event to the ticket's history: nothing the workflow reads, so
its decisions and its record do not change. It comes after the update has answered, never
before, so a refused request (404, 403, 409, 422) still writes nothing. The price: the first
workflow task of a ticket's first action runs on the default key. For a ticket filed during a
storm, that is its intake's task, queued behind the storm's (docs/benchmarks.md). A ticket
already on key 1 is not raised again. The raise is best effort: if the server refuses it, the
action has still been applied, at the ticket's own priority.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionOptionsRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import Priority
from temporalio.service import RPCError

from workflows import search_attributes as sa

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


async def raise_for_a_person(client: Client, handle: WorkflowHandle[Any, Any]) -> bool:
    """Raise the ticket to the person's priority, once its action has been applied; whether it
    was raised now. Nothing happens for a ticket raised already, or one no longer running."""
    try:
        description = await handle.describe()
    except RPCError:
        return False
    raised = description.raw_description.workflow_execution_info.priority.priority_key == PERSON_PRIORITY_KEY
    if raised or description.status != WorkflowExecutionStatus.RUNNING:
        return False
    customer_id = description.typed_search_attributes.get(sa.CUSTOMER_ID) or ""
    try:
        await set_priority(client, handle.id, person_priority(customer_id))
    except RPCError as err:
        log.warning("ticket %s stays on its own priority: %s", handle.id, err.message)
        return False
    return True
