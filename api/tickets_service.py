"""Ticket intake and actions: the logic behind the thin routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.catalog import get_contract_terms
from api.errors import REFUSAL_STATUS, ApiError
from api.schemas import TicketCreate
from workflows import machine
from workflows import search_attributes as sa
from workflows.entitlement import build_entitlement, check_intake
from workflows.models import TicketOpened, TicketState, workflow_id_for
from workflows.ticket import TicketWorkflow

_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7a52-2b0e-4d8e-9a55-0f3b7c1d2e90")


def new_ticket_id(customer_id: str, idempotency_key: str | None) -> str:
    if idempotency_key:
        return uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{customer_id}\n{idempotency_key}").hex[:12]
    return uuid.uuid4().hex[:12]


def received_now() -> datetime:
    # Whole milliseconds: what Temporal timestamps carry, so deadlines compare exactly.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def open_ticket(
    *,
    client: Client,
    session: AsyncSession,
    task_queue: str,
    request: TicketCreate,
    idempotency_key: str | None,
) -> tuple[TicketState, bool]:
    """Start the ticket's workflow. Returns its state and whether this call created it."""
    terms = await get_contract_terms(session=session, customer_id=request.customer_id)
    if terms is None:
        raise ApiError(
            422,
            f"Unknown customer {request.customer_id!r}: use the customer id on your support "
            "contract, or ask your account manager to register the customer.",
            rule="unknown_customer",
        )
    received_at = received_now()
    entitlement = build_entitlement(terms, received_at=received_at)
    check_intake(entitlement, severity=request.severity, channel=request.channel, category=request.category)
    opened = TicketOpened(
        ticket_id=new_ticket_id(request.customer_id, idempotency_key),
        customer_id=request.customer_id,
        title=request.title,
        description=request.description,
        severity=request.severity,
        product=request.product,
        channel=request.channel,
        category=request.category,
        reporter=request.reporter,
        received_at=received_at,
        entitlement=entitlement,
    )
    # The same pure machine the workflow runs: the 201 shows exactly what the ticket will hold.
    initial = machine.open_ticket(opened).state
    try:
        await client.start_workflow(
            TicketWorkflow.run,
            opened,
            id=workflow_id_for(opened.ticket_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=sa.for_ticket(initial),
            static_summary=machine.headline(initial),
            static_details=f"{request.description[:2000]}",
        )
    except WorkflowAlreadyStartedError:
        # A retried request with the same Idempotency-Key: answer with the ticket it made.
        return await ticket_state(client=client, ticket_id=opened.ticket_id), False
    return initial, True


def _handle(client: Client, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketState]:
    return client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))


async def ticket_state(*, client: Client, ticket_id: str) -> TicketState:
    try:
        return await _handle(client, ticket_id).query(TicketWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise _not_found(ticket_id) from err
        raise


def _not_found(ticket_id: str) -> ApiError:
    return ApiError(
        404, f"No ticket {ticket_id!r}: check the id returned when it was filed.", rule="unknown_ticket"
    )


async def act(
    *, client: Client, ticket_id: str, update: str, action: BaseModel, update_id: str | None = None
) -> TicketState:
    """Run one validated workflow update; a refusal becomes a 409 or 422 and leaves no history.

    With an `update_id`, Temporal runs a retried update once and answers the retry with the
    first result.
    """
    handle = _handle(client, ticket_id)
    try:
        result: Any = await handle.execute_update(
            update, action, id=f"{update}-{update_id}" if update_id else None, result_type=TicketState
        )
        return TicketState.model_validate(result)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in REFUSAL_STATUS:
            raise ApiError(REFUSAL_STATUS[cause.type], cause.message, rule=update) from err
        raise
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            description = await handle.describe()
        except RPCError:
            raise _not_found(ticket_id) from err
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise ApiError(409, "The ticket is closed; file a new ticket instead.", rule=update) from err
        raise
