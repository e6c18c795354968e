"""Ticket intake and actions: the logic behind the thin routes.

Every function takes the acting `principal`. Reach comes first everywhere: a ticket outside
the principal's reach is the same 404 as a ticket that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

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

from api import incident_intake
from api.errors import ApiError
from api.priority import raise_before, ticket_priority
from api.schemas import TicketCreate
from store import idempotency
from store.catalog import CustomerStatus, TermsByRevision, customer_terms, deactivated_customer_message
from workflows import machine
from workflows import search_attributes as sa
from workflows.actions.base import ActionModel, RefusalKind
from workflows.actions.base import not_found as no_such_ticket
from workflows.entitlement import build_entitlement, check_intake
from workflows.enums import Role, Severity, Visibility
from workflows.incident_watch_model import AutoIncidentRule
from workflows.models import Principal, TicketEvent, TicketOpened, TicketState, TicketView, workflow_id_for
from workflows.outages import outage_times_problem
from workflows.permissions import can_reach
from workflows.policy import current, rules_for
from workflows.ticket import TicketWorkflow

REFUSAL_STATUS = {
    RefusalKind.CONFLICT.value: 409,
    RefusalKind.INVALID.value: 422,
    RefusalKind.FORBIDDEN.value: 403,
    RefusalKind.NOT_FOUND.value: 404,
}


def new_ticket_id() -> str:
    """A random id: nothing a caller sends (its key, customer or Idempotency-Key) predicts it,
    so an id's answer never tells anyone which tickets exist (issue 17 §2)."""
    return secrets.token_hex(6)


def request_digest(*parts: object) -> str:
    """A fingerprint of what a request asks for, to tell a retry from a different request."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ui_summary(ticket: TicketState) -> str:
    """'[Sev 1][Premium] acme / identity', the workflow's static summary in the Temporal UI.

    No title and no description: summaries stay readable in an encrypted history
    (runtime/codec.py), so they carry no customer text. The ticket's text is in its
    (encrypted) input, which the UI and the CLI decode through POST /codec/decode.
    """
    return f"[Sev {int(ticket.severity)}][{ticket.tier.label}] {ticket.customer_id} / {ticket.product.value}"


def received_now() -> datetime:
    # Whole milliseconds: what Temporal timestamps carry, so deadlines compare exactly.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def not_found(ticket_id: str) -> ApiError:
    return ApiError(404, no_such_ticket(ticket_id).message, rule="unknown_ticket")


def unknown_customer(customer_id: str) -> ApiError:
    return ApiError(
        422,
        f"Unknown customer {customer_id!r}: use the customer id on your support contract, "
        "or ask your account manager to register the customer.",
        rule="unknown_customer",
    )


async def claim_idempotency_key(
    *,
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    digest: str,
    resource_id: str | None = None,
) -> str | None:
    """Remember what `key` was first used for, per API key; the same key for a different request
    is a 422. Returns the resource the first request made (`resource_id` if this is the first)."""
    if key is None:
        return resource_id
    claimed = await idempotency.claim(
        session=session, scope=principal.identity, key=key, digest=digest, resource_id=resource_id
    )
    if claimed is None:
        raise ApiError(
            422,
            "This Idempotency-Key was already used for a different request; send a new key "
            "for a new request, or repeat the original request exactly to retry it.",
            rule="idempotency_key_reused",
        )
    return claimed.resource_id


def check_outage_at_intake(request: TicketCreate, received_at: datetime) -> None:
    started, ended = request.outage_started_at, request.outage_ended_at
    if started is None and ended is None:
        return
    if request.severity != Severity.CRITICAL:
        raise ApiError(
            422,
            "outage_started_at: only a Sev 1 records an outage; file it as severity 1 or leave the "
            "outage times out.",
            rule="outage_sev1_only",
        )
    if started is None:
        raise ApiError(422, "outage_started_at: say when the outage began.", rule="outage_times")
    # The action's bounds (workflows/outages.py), with intake's own clock as now.
    problem = outage_times_problem(
        received_at=received_at,
        now=received_at,
        started_at=started,
        ended_at=ended,
        started_field="outage_started_at",
        ended_field="outage_ended_at",
    )
    if problem is not None:
        raise ApiError(422, str(problem), rule=problem.rule)


async def open_ticket(
    *,
    client: Client,
    session: AsyncSession,
    task_queue: str,
    principal: Principal,
    request: TicketCreate,
    idempotency_key: str | None,
    terms_by_revision: TermsByRevision | None = None,
    incident_cache_seconds: float = 5.0,
    auto_incident: AutoIncidentRule | None = None,
) -> tuple[TicketState, bool]:
    """Start the ticket's workflow. Returns its state and whether this call created it.
    With `terms_by_revision`, a contract revision seen before is not read again. With
    `auto_incident`, a Sev 1-2 ticket filed unlinked counts toward an automatic incident."""
    if terms_by_revision is not None:
        status, terms = await terms_by_revision.customer_terms(
            session=session, customer_id=request.customer_id
        )
    else:
        status, terms = await customer_terms(session=session, customer_id=request.customer_id)
    # A customer outside the principal's reach is as unknown as one that does not exist.
    if terms is None or not can_reach(
        current(), principal, customer_id=terms.customer_id, partner_id=terms.partner_id
    ):
        raise unknown_customer(request.customer_id)
    if status == CustomerStatus.DEACTIVATED:
        raise ApiError(422, deactivated_customer_message(request.customer_id), rule="customer_deactivated")
    received_at = received_now()
    entitlement = build_entitlement(terms, received_at=received_at)
    check_intake(entitlement, severity=request.severity, channel=request.channel, category=request.category)
    check_outage_at_intake(request, received_at)
    # A retry finds the id its first attempt claimed, even if that attempt crashed before the
    # start: the start then happens once, under that id (REJECT_DUPLICATE below).
    fresh_id = new_ticket_id()
    ticket_id = await claim_idempotency_key(
        session=session,
        principal=principal,
        key=idempotency_key,
        digest=request_digest("intake", request.model_dump(mode="json")),
        resource_id=fresh_id,
    )
    # An open incident whose rule matches links the ticket from its start (DESIGN.md §13).
    incident_id = await incident_intake.incident_for(
        client=client,
        task_queue=task_queue,
        ttl_seconds=incident_cache_seconds,
        customer_id=request.customer_id,
        product=request.product,
        severity=request.severity,
        received_at=received_at,
    )
    opened = TicketOpened(
        incident_id=incident_id,
        ticket_id=ticket_id or fresh_id,
        customer_id=request.customer_id,
        title=request.title,
        description=request.description,
        severity=request.severity,
        product=request.product,
        channel=request.channel,
        category=request.category,
        reporter=str(principal),
        outage_started_at=request.outage_started_at,
        outage_ended_at=request.outage_ended_at,
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
            static_summary=ui_summary(initial),
            priority=ticket_priority(opened.customer_id),
        )
    except WorkflowAlreadyStartedError:
        # A retried request with the same Idempotency-Key: answer with the ticket it made. Its
        # first attempt may have died before counting it; the watcher counts a ticket once.
        state = await ticket_state(client=client, principal=principal, ticket_id=opened.ticket_id)
        await incident_intake.count_toward_auto_incident(
            client=client, task_queue=task_queue, rule=auto_incident, ticket=state
        )
        return state, False
    await incident_intake.count_toward_auto_incident(
        client=client, task_queue=task_queue, rule=auto_incident, ticket=initial
    )
    return initial, True


def _handle(client: Client, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketState]:
    return client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))


async def ticket_state(*, client: Client, principal: Principal, ticket_id: str) -> TicketState:
    try:
        state = await _handle(client, ticket_id).query(TicketWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found(ticket_id) from err
        raise
    if not can_reach(
        rules_for(state.entitlement.policy_version),
        principal,
        customer_id=state.customer_id,
        partner_id=state.entitlement.partner_id,
    ):
        raise not_found(ticket_id)
    return state


async def _closed_ticket_refusal(handle: WorkflowHandle[Any, Any], principal: Principal) -> ApiError:
    """Why an update found no running workflow: no such ticket (404) or a closed one (409)."""
    try:
        description = await handle.describe()
    except RPCError:
        return not_found(handle.id.removeprefix("ticket-"))
    attrs = description.typed_search_attributes
    customer_id = attrs.get(sa.CUSTOMER_ID) or ""
    if not can_reach(current(), principal, customer_id=customer_id, partner_id=attrs.get(sa.PARTNER_ID)):
        return not_found(handle.id.removeprefix("ticket-"))
    if description.status != WorkflowExecutionStatus.RUNNING:
        return ApiError(409, "The ticket is closed; file a new ticket instead.", rule="ticket_closed")
    return ApiError(503, "The ticket did not answer; retry in a few seconds.", rule="temporal_unavailable")


async def act(
    *,
    client: Client,
    session: AsyncSession,
    principal: Principal,
    ticket_id: str,
    update: str,
    action: ActionModel,
    idempotency_key: str | None = None,
    for_a_person: bool = False,
) -> TicketView:
    """Run one validated workflow update; a refusal becomes a 4xx and leaves no history.

    `for_a_person`: someone waits on this one ticket's answer (an API or console action, not a
    bulk link), so the ticket goes to the person's priority (api/priority.py): before the update
    if nothing has happened to it yet and the pure machine accepts the action, else once the
    update has answered.

    The update's validator checks reach (404), the permission table (403) and the ticket's
    state (409/422), in that order. With an Idempotency-Key, Temporal runs a retried update
    once and answers the retry with the first result.
    """
    handle = _handle(client, ticket_id)
    update_id = None
    if idempotency_key is not None:
        # Only a keyed request needs its fingerprint; most actions send no key.
        digest = request_digest(update, ticket_id, action.model_dump(mode="json", exclude={"actor"}))
        await claim_idempotency_key(session=session, principal=principal, key=idempotency_key, digest=digest)
        # Scoped by the API key's id: another key, even of the same name, never gets this answer.
        update_id = f"{update}-{request_digest(principal.identity, idempotency_key, digest)[:40]}"
    try:
        # The update answers the ticket's small view; the full state is the `state` query's.
        after = await raise_before(client, handle, action) if for_a_person else None
        result: Any = await handle.execute_update(update, action, id=update_id, result_type=TicketView)
        if after is not None:
            await after.now(client)
        return TicketView.model_validate(result)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == RefusalKind.NOT_FOUND.value:
            # A foreign ticket answers exactly as a missing one, rule and type included.
            raise not_found(ticket_id) from err
        if isinstance(cause, ApplicationError) and cause.type in REFUSAL_STATUS:
            raise ApiError(REFUSAL_STATUS[cause.type], cause.message, rule=update) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            # An id Temporal refuses (over-long, say) names no ticket: as missing as any other.
            raise not_found(ticket_id) from err
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise await _closed_ticket_refusal(handle, principal) from err


# Which internal notes each role may not read (DESIGN.md §11): customers none of them,
# partners not ConnectSoft's own.
HIDDEN_VISIBILITY: dict[Role, frozenset[Visibility]] = {
    Role.CUSTOMER: frozenset({Visibility.INTERNAL, Visibility.PARTNER_INTERNAL}),
    Role.PARTNER: frozenset({Visibility.INTERNAL}),
}


def visible_events(principal: Principal, events: list[TicketEvent]) -> list[TicketEvent]:
    hidden = HIDDEN_VISIBILITY.get(principal.role, frozenset())
    return [event for event in events if event.detail.get("visibility") not in hidden]
