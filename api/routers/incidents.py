"""/incidents: major incidents (DESIGN.md §8, §13). Support and admins open, link, update,
acknowledge the page of and resolve one; a partner reads those touching its customers' tickets,
limited to them."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api import incidents_service as service
from api.auth import PrincipalDep
from api.deps import ClientDep, SessionDep, SettingsDep
from api.errors import problem_responses
from api.incident_schemas import (
    IncidentCreate,
    IncidentLinks,
    IncidentList,
    IncidentPagePublic,
    IncidentPublic,
    IncidentResolveCreate,
    IncidentUpdateCreate,
    IncidentUpdatePublic,
    LinksDone,
)
from api.schemas import TicketPublic
from workflows.permissions import TicketScope

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentPublic,
    responses=problem_responses(401, 403, 422),
)
async def open_incident(
    body: IncidentCreate,
    response: Response,
    principal: PrincipalDep,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
) -> IncidentPublic:
    """Open a major incident: its own workflow, `incident-<id>`. Its outage begins now, or at
    `outage_started_at`."""
    state = await service.open_incident(
        client=client, session=session, settings=settings, principal=principal, request=body
    )
    response.headers["Location"] = f"/incidents/{state.incident_id}"
    return await service.public(session=session, state=state, scope=TicketScope())


@router.get("", response_model=IncidentList, responses=problem_responses(401, 403))
async def list_incidents(
    principal: PrincipalDep, client: ClientDep, session: SessionDep, settings: SettingsDep
) -> IncidentList:
    """Incidents, newest first: every one for support and admins, a partner's those touching its
    customers' tickets."""
    items = await service.list_incidents(
        client=client, session=session, principal=principal, task_queue=settings.task_queue
    )
    return IncidentList(items=items)


@router.get("/{incident_id}", response_model=IncidentPublic, responses=problem_responses(401, 404))
async def get_incident(
    incident_id: str, principal: PrincipalDep, client: ClientDep, session: SessionDep
) -> IncidentPublic:
    """Its status, the linked, open, met and breached counts, and each update's delivered of total."""
    state, scope = await service.reachable(
        client=client, session=session, principal=principal, incident_id=incident_id
    )
    return await service.public(session=session, state=state, scope=scope)


@router.post(
    "/{incident_id}/links", response_model=LinksDone, responses=problem_responses(401, 403, 404, 409, 422)
)
async def link_tickets(
    incident_id: str,
    body: IncidentLinks,
    principal: PrincipalDep,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
) -> LinksDone:
    """Link tickets by id, or add a rule: it links the matching tickets, and those that arrive
    while the incident is open."""
    return await service.link(
        client=client,
        session=session,
        principal=principal,
        incident_id=incident_id,
        links=body,
        task_queue=settings.task_queue,
    )


@router.delete(
    "/{incident_id}/links/{ticket_id}",
    response_model=TicketPublic,
    responses=problem_responses(401, 403, 404, 409),
)
async def unlink_ticket(
    incident_id: str, ticket_id: str, principal: PrincipalDep, client: ClientDep, session: SessionDep
) -> TicketPublic:
    """Unlink a ticket: it is back on its own."""
    view = await service.unlink(
        client=client, session=session, principal=principal, incident_id=incident_id, ticket_id=ticket_id
    )
    return TicketPublic.of(view)


@router.post(
    "/{incident_id}/updates",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentUpdatePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def post_update(
    incident_id: str,
    body: IncidentUpdateCreate,
    principal: PrincipalDep,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
) -> IncidentUpdatePublic:
    """A public update to every linked open ticket, as ConnectSoft's comment; it fans out in
    batches (`GET /incidents/{id}`: delivered of total)."""
    record = await service.post_update(
        client=client,
        session=session,
        principal=principal,
        incident_id=incident_id,
        message=body.message,
        resolution=False,
        task_queue=settings.task_queue,
    )
    return service.update_public(record)


@router.post(
    "/{incident_id}/resolve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentUpdatePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def resolve_incident(
    incident_id: str,
    body: IncidentResolveCreate,
    principal: PrincipalDep,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
) -> IncidentUpdatePublic:
    """Resolve the incident: each linked open ticket resolves with its resolution, then follows
    its own rules (reopen, auto-close). Its outage ends now, or at `outage_ended_at`."""
    record = await service.post_update(
        client=client,
        session=session,
        principal=principal,
        incident_id=incident_id,
        message=body.resolution,
        resolution=True,
        task_queue=settings.task_queue,
        outage_ended_at=body.outage_ended_at,
    )
    return service.update_public(record)


@router.post(
    "/{incident_id}/acknowledge",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentPagePublic,
    responses={
        200: {"model": IncidentPagePublic, "description": "Already acknowledged: nothing more is sent"},
        **problem_responses(401, 403, 404, 409),
    },
)
async def acknowledge_page(
    incident_id: str, response: Response, principal: PrincipalDep, client: ClientDep, session: SessionDep
) -> IncidentPagePublic:
    """Acknowledge the incident's page (PagerDuty `acknowledge`, `dedup_key` = the incident id):
    202, the incident's workflow sends it once; 200 when it was already acknowledged. 409 once
    resolved, or while no linked ticket has paged."""
    page, acknowledged_now = await service.acknowledge_page(
        client=client, session=session, principal=principal, incident_id=incident_id
    )
    if not acknowledged_now:
        response.status_code = status.HTTP_200_OK
    return page
