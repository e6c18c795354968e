"""Major incidents (DESIGN.md §13): the logic behind the thin /incidents routes.

Who may do what is §11's incident rows: support and admins manage an incident; a partner reads
the incidents that link its customers' tickets, its counts and lists limited to those tickets;
a customer has no incident endpoint (it sees the updates as comments on its own tickets), so an
incident answers it 404, like one that does not exist. Every refusal comes before anything is
started or signalled.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import incident_intake
from api import tickets_service as tickets
from api.errors import ApiError
from api.incident_schemas import (
    IncidentCreate,
    IncidentLinks,
    IncidentPagePublic,
    IncidentPublic,
    IncidentSummary,
    IncidentUpdatePublic,
    LinkedTicket,
    LinksDone,
)
from runtime.settings import Settings
from store import catalog
from store import incident_notices as notices
from store import incidents as read_model
from workflows import search_attributes as sa
from workflows.actions.base import RefusalKind
from workflows.actions.incident import LINK_INCIDENT, LinkIncident, UnlinkIncident
from workflows.enums import CLOSED_STATES, PageAction, Role
from workflows.incident import IncidentWorkflow
from workflows.incident_model import (
    AcknowledgeIncidentPage,
    AddLinkRule,
    IncidentOpened,
    IncidentPageAcknowledged,
    IncidentState,
    IncidentStatus,
    IncidentUpdateRecord,
    LinkRule,
    PostIncidentUpdate,
    ResolveIncident,
    incident_workflow_id,
)
from workflows.models import Principal, TicketState, TicketView
from workflows.outages import OutageTimesProblem, outage_times_problem
from workflows.permissions import Capability, Grant, TicketScope, forbidden_reason
from workflows.policy import current

# The incident rows for a current policy version that does not list them (one published
# before them): the rows of DESIGN.md §11. Policy 2026.12-2 lists both.
MANAGE_ROW = LINK_INCIDENT.grants
READ_ROW = {Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES, Role.PARTNER: Grant.ITS_CUSTOMERS_TICKETS}
# Tickets acted on at once when a request names many.
SLICE = 50
LISTED_TICKETS = 200

T = TypeVar("T")


def not_found(incident_id: str) -> ApiError:
    return ApiError(
        404,
        f"No incident {incident_id!r}: check the id returned when it was opened.",
        rule="unknown_incident",
    )


def check_manages(principal: Principal) -> None:
    """403 unless the principal opens, links, updates and resolves incidents (support, admin)."""
    reason = forbidden_reason(current(), principal, Capability.INCIDENT, row=MANAGE_ROW)
    if reason is not None:
        raise ApiError(403, reason, rule="forbidden")


def read_scope(principal: Principal) -> TicketScope | None:
    """The tickets whose incidents the principal reads, or None when it reads none (a customer)."""
    if forbidden_reason(current(), principal, Capability.READ_INCIDENT, row=READ_ROW) is not None:
        return None
    return TicketScope.of(current(), principal)


def _handle(client: Client, incident_id: str) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
    return client.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident_id))


async def incident_state(*, client: Client, incident_id: str) -> IncidentState:
    try:
        return await _handle(client, incident_id).query(IncidentWorkflow.state)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found(incident_id) from err
        raise


async def reachable(
    *, client: Client, session: AsyncSession, principal: Principal, incident_id: str
) -> tuple[IncidentState, TicketScope]:
    """The incident and the scope its counts and lists are limited to; 404 outside reach."""
    scope = read_scope(principal)
    if scope is None:
        raise not_found(incident_id)
    limited = scope != TicketScope()
    if limited and incident_id not in await read_model.incidents_in_scope(session=session, scope=scope):
        raise not_found(incident_id)
    return await incident_state(client=client, incident_id=incident_id), scope


async def managed(
    *, client: Client, session: AsyncSession, principal: Principal, incident_id: str
) -> IncidentState:
    """An incident within the principal's reach (404) that it manages (403)."""
    state, _ = await reachable(client=client, session=session, principal=principal, incident_id=incident_id)
    check_manages(principal)
    return state


async def managed_open(
    *, client: Client, session: AsyncSession, principal: Principal, incident_id: str
) -> IncidentState:
    """An incident the principal manages and that is still open (409 once resolved)."""
    state = await managed(client=client, session=session, principal=principal, incident_id=incident_id)
    if state.status != IncidentStatus.OPEN:
        raise ApiError(
            409, "The incident is resolved; open a new incident instead.", rule="incident_resolved"
        )
    return state


async def open_incident(
    *,
    client: Client,
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    request: IncidentCreate,
) -> IncidentState:
    check_manages(principal)
    for number, customer_id in enumerate(request.customer_ids or []):
        _, terms = await catalog.customer_terms(session=session, customer_id=customer_id)
        if terms is None:
            raise ApiError(
                422, f"customer_ids[{number}]: unknown customer {customer_id!r}.", rule="unknown_customer"
            )
    products = list(dict.fromkeys([request.product, *request.also_products]))
    opened_at = tickets.received_now()
    if request.outage_started_at is not None:
        _check_outage(
            outage_times_problem(
                received_at=opened_at,
                now=opened_at,
                started_at=request.outage_started_at,
                ended_at=None,
                started_field="outage_started_at",
                since="the incident is opened",
            )
        )
    opened = IncidentOpened(
        incident_id=f"inc-{secrets.token_hex(5)}",
        title=request.title,
        description=request.description,
        products=products,
        severity=request.severity,
        customer_ids=request.customer_ids,
        opened_by=principal,
        opened_at=opened_at,
        outage_started_at=request.outage_started_at,
        sweep_seconds=settings.incident_sweep_seconds,
        batch_size=settings.incident_batch_size,
        digest_seconds=settings.incident_digest_seconds,
    )
    await client.start_workflow(
        IncidentWorkflow.run,
        opened,
        id=incident_workflow_id(opened.incident_id),
        task_queue=settings.task_queue,
        search_attributes=sa.for_incident(opened.incident_id),
        static_summary=opened.ui_summary(),
        static_details=opened.ui_details(),
    )
    incident_intake.forget(settings.task_queue)
    return IncidentState.opened(opened)


def _check_outage(problem: OutageTimesProblem | None) -> None:
    if problem is not None:
        raise ApiError(422, str(problem), rule=problem.rule)


async def public(*, session: AsyncSession, state: IncidentState, scope: TicketScope) -> IncidentPublic:
    counts = await read_model.incident_counts(session=session, incident_id=state.incident_id, scope=scope)
    rows = await read_model.linked_tickets(
        session=session, incident_id=state.incident_id, scope=scope, limit=LISTED_TICKETS, offset=0
    )
    # A partner's view is its customers' tickets only: the fan-out's figures count everyone's.
    limited = scope != TicketScope()
    outage_started_at, outage_ended_at = state.outage()
    return IncidentPublic(
        incident_id=state.incident_id,
        title=state.title,
        description=state.description,
        products=state.products,
        severity=state.severity,
        status=state.status,
        opened_at=state.opened_at,
        opened_by=str(state.opened_by),
        resolution=state.resolution,
        resolved_at=state.resolved_at,
        outage_started_at=outage_started_at,
        outage_ended_at=outage_ended_at,
        rules=[] if limited else state.rules,
        **counts,
        updates=[update_public(update, limited=limited) for update in state.updates],
        tickets=[LinkedTicket.model_validate(row.model_dump()) for row in rows],
        # ConnectSoft's on-call is ConnectSoft's: a partner's view has no page.
        page=None if limited else await page_public(session=session, state=state),
    )


async def page_public(*, session: AsyncSession, state: IncidentState) -> IncidentPagePublic | None:
    """The incident's page as the pager last heard of it, with who acknowledged it."""
    page = await notices.incident_page(session=session, incident_id=state.incident_id)
    if page is None:
        return None
    by = state.page_acknowledged_by
    return IncidentPagePublic(
        incident_id=state.incident_id,
        status=PageAction(page.status),
        triggered_at=page.triggered_at,
        acknowledged_at=state.page_acknowledged_at,
        acknowledged_by=None if by is None else str(by),
    )


async def acknowledge_page(
    *, client: Client, session: AsyncSession, principal: Principal, incident_id: str
) -> tuple[IncidentPagePublic, bool]:
    """Acknowledge the incident's page (dedup key = its id) through its workflow, which sends the
    pager's `acknowledge` once. Answers the page, and whether this request acknowledged it
    (False: it was already, and nothing more is sent). 409 once resolved, or with no page."""
    state = await managed_open(client=client, session=session, principal=principal, incident_id=incident_id)
    if await notices.incident_page(session=session, incident_id=incident_id) is None:
        raise ApiError(
            409,
            f"Incident {incident_id} has no page to acknowledge: none of its linked tickets has paged "
            "on-call.",
            rule="no_incident_page",
        )
    acknowledged = state.page_acknowledged_at is not None
    if not acknowledged:
        done: IncidentPageAcknowledged = await _execute(
            client,
            incident_id,
            IncidentWorkflow.acknowledge_page,
            AcknowledgeIncidentPage(actor=principal),
            # One acknowledge per incident: a retry, or another key's at the same moment, is
            # the same update.
            update_id=f"acknowledge-page-{incident_id}",
        )
        acknowledged = done.already
        state = state.model_copy(
            update={
                "page_acknowledged_at": done.acknowledged_at,
                "page_acknowledged_by": done.acknowledged_by,
            }
        )
    page = await page_public(session=session, state=state)
    assert page is not None
    return page, not acknowledged


def update_public(update: IncidentUpdateRecord, *, limited: bool = False) -> IncidentUpdatePublic:
    return IncidentUpdatePublic(
        update_id=update.update_id,
        kind=update.kind,
        message=update.message,
        at=update.at,
        by=str(update.by),
        delivered=None if limited else update.delivered,
        total=None if limited else update.total,
        done=update.done,
    )


async def list_incidents(
    *, client: Client, session: AsyncSession, principal: Principal, task_queue: str, open_only: bool = False
) -> list[IncidentSummary]:
    """Newest first; `open_only` (the console's "Link to incident") asks visibility for the open
    ones alone, and keeps only those still open when queried."""
    scope = read_scope(principal)
    if scope is None:
        reason = forbidden_reason(current(), principal, Capability.READ_INCIDENT, row=READ_ROW)
        raise ApiError(403, reason or "Forbidden.", rule="forbidden")
    if scope != TicketScope():
        ids = await read_model.incidents_in_scope(session=session, scope=scope)
    else:
        ids = []
        query = f"WorkflowType = 'IncidentWorkflow' AND TaskQueue = '{task_queue}'"
        if open_only:
            query += f" AND {sa.INCIDENT_STATUS.name} = '{IncidentStatus.OPEN.value}'"
        async for execution in client.list_workflows(query, limit=200):
            incident_id = execution.id.removeprefix("incident-")
            if incident_id not in ids:
                ids.append(incident_id)
    states = await _in_slices(ids, lambda each: incident_state(client=client, incident_id=each))
    if open_only:
        states = [state for state in states if state.status == IncidentStatus.OPEN]
    return sorted(
        (IncidentSummary.model_validate(state.model_dump()) for state in states),
        key=lambda summary: summary.opened_at,
        reverse=True,
    )


async def _in_slices(items: Sequence[str], call: Callable[[str], Awaitable[T]]) -> list[T]:
    done: list[T] = []
    for start in range(0, len(items), SLICE):
        done.extend(await asyncio.gather(*(call(each) for each in items[start : start + SLICE])))
    return done


async def link(
    *,
    client: Client,
    session: AsyncSession,
    principal: Principal,
    incident_id: str,
    links: IncidentLinks,
    task_queue: str,
) -> LinksDone:
    state = await managed_open(client=client, session=session, principal=principal, incident_id=incident_id)
    rule = links.rule()
    if rule is not None:
        await _add_rule(client, state, principal, rule)
        incident_intake.forget(task_queue)
        return LinksDone(incident_id=incident_id, linked=[], rule=rule)
    ids = list(dict.fromkeys(links.ticket_ids or []))
    # Every ticket is checked before any is linked: one bad id links none.
    found = await _in_slices(ids, lambda ticket_id: _linkable(client, principal, ticket_id, incident_id))
    todo = [state.ticket_id for state in found if state.incident_id != incident_id]
    action = LinkIncident(actor=principal, incident_id=incident_id)
    await _in_slices(
        todo,
        lambda ticket_id: tickets.act(
            client=client,
            session=session,
            principal=principal,
            ticket_id=ticket_id,
            update="link-incident",
            action=action,
        ),
    )
    return LinksDone(incident_id=incident_id, linked=ids, rule=None)


async def _linkable(client: Client, principal: Principal, ticket_id: str, incident_id: str) -> TicketState:
    """The ticket, if it can join the incident; a ticket out of reach is as unknown as a missing one."""
    try:
        state = await tickets.ticket_state(client=client, principal=principal, ticket_id=ticket_id)
    except ApiError as err:
        if err.status_code == 404:
            raise ApiError(422, f"ticket_ids: {err.detail}", rule="unknown_ticket") from err
        raise
    if state.incident_id not in (None, incident_id):
        raise ApiError(
            409,
            f"ticket_ids: ticket {ticket_id} is linked to incident {state.incident_id}; "
            "unlink it there first.",
            rule="ticket_in_another_incident",
        )
    if state.incident_id is None and state.status in CLOSED_STATES:
        raise ApiError(
            409,
            f"ticket_ids: ticket {ticket_id} is {state.status.value}; only an open ticket joins.",
            rule="ticket_closed",
        )
    return state


async def _add_rule(client: Client, state: IncidentState, principal: Principal, rule: LinkRule) -> None:
    if rule.product not in state.products:
        products = ", ".join(p.value for p in state.products)
        raise ApiError(
            422, f"product: the incident is about {products}; link tickets of those.", rule="incident_rule"
        )
    await _execute(
        client, state.incident_id, IncidentWorkflow.add_rule, AddLinkRule(actor=principal, rule=rule)
    )


async def unlink(
    *, client: Client, session: AsyncSession, principal: Principal, incident_id: str, ticket_id: str
) -> TicketView:
    await managed(client=client, session=session, principal=principal, incident_id=incident_id)
    state = await tickets.ticket_state(client=client, principal=principal, ticket_id=ticket_id)
    if state.incident_id != incident_id:
        raise ApiError(
            409, f"Ticket {ticket_id} is not linked to incident {incident_id}.", rule="ticket_not_linked"
        )
    action = UnlinkIncident(actor=principal, incident_id=incident_id)
    return await tickets.act(
        client=client,
        session=session,
        principal=principal,
        ticket_id=ticket_id,
        update="unlink-incident",
        action=action,
        for_a_person=True,
    )


async def post_update(
    *,
    client: Client,
    session: AsyncSession,
    principal: Principal,
    incident_id: str,
    message: str,
    resolution: bool,
    task_queue: str,
    outage_ended_at: datetime | None = None,
) -> IncidentUpdateRecord:
    state = await managed_open(client=client, session=session, principal=principal, incident_id=incident_id)
    if resolution:
        request = ResolveIncident(actor=principal, resolution=message, outage_ended_at=outage_ended_at)
        _check_outage(request.outage_problem(state, tickets.received_now()))
        record = await _execute(client, state.incident_id, IncidentWorkflow.resolve, request)
        incident_intake.forget(task_queue)
        return record
    return await _execute(
        client,
        state.incident_id,
        IncidentWorkflow.post_update,
        PostIncidentUpdate(actor=principal, message=message),
    )


async def _execute(
    client: Client, incident_id: str, update: Any, request: Any, *, update_id: str | None = None
) -> Any:
    try:
        return await _handle(client, incident_id).execute_update(update, request, id=update_id)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == RefusalKind.CONFLICT.value:
            raise ApiError(409, cause.message, rule="incident_resolved") from err
        if isinstance(cause, ApplicationError) and cause.type == RefusalKind.INVALID.value:
            # The refusal's rule where it names one (outage times), else the link rule's.
            rule = str(cause.details[0]) if cause.details else "incident_rule"
            raise ApiError(422, cause.message, rule=rule) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the resolved incident's workflow has ended
            raise ApiError(
                409, "The incident is resolved; open a new incident instead.", rule="incident_resolved"
            ) from err
        raise
