"""/console/incidents: major incidents in the console (issue 19, DESIGN.md §11, §13).

The list and an incident's page read and act through api/incidents_service.py, exactly as the
/incidents routes do: the same reach (a partner sees the incidents touching its customers'
tickets, limited to them; a customer, and anyone on a foreign or missing incident, gets the
console's "no such page"), the same permission rows and the same refusals, shown as their
sentences. Every form carries the session's CSRF token and follows post/redirect/get.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError

from api import incidents_service as service
from api.console import session
from api.console.incident_views import may_manage_incidents, may_read_incidents
from api.console.routes import not_found_page, render, see_other, ticket_refused
from api.console.views import ClockSignal
from api.deps import ClientDep, SessionDep, SettingsDep
from api.errors import ApiError, describe_validation
from api.incident_schemas import IncidentLinks, IncidentResolveCreate, IncidentUpdateCreate
from store import incidents as read_model
from workflows.incident_model import IncidentStatus
from workflows.permissions import TicketScope

router = APIRouter(prefix="/console", include_in_schema=False)

DONE_TEXT = {
    "update": "Update posted: it fans out to the linked open tickets.",
    "resolve": "Incident resolved: each linked open ticket resolves with its resolution.",
    "acknowledge": "Page acknowledged: on-call's pager gets the acknowledge, once.",
    "unlink": "Ticket unlinked: it is back on its own.",
}


def _path(incident_id: str) -> str:
    return f"/console/incidents/{quote(incident_id, safe='')}"


@router.get("/incidents")
async def incidents_list(
    request: Request, viewer: session.PageViewer, db: SessionDep, client: ClientDep, settings: SettingsDep
) -> Response:
    if not may_read_incidents(viewer.principal):
        return not_found_page(request, viewer, None)
    items = await service.list_incidents(
        client=client, session=db, principal=viewer.principal, task_queue=settings.task_queue
    )
    return render(request, "incidents.html", {"items": items, "nav": "incidents"}, viewer=viewer)


async def _incident_page(
    request: Request,
    viewer: session.Viewer,
    db: Any,
    client: Any,
    incident_id: str,
    *,
    refusal: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        state, scope = await service.reachable(
            client=client, session=db, principal=viewer.principal, incident_id=incident_id
        )
    except ApiError as err:
        if err.status_code == 404:
            return not_found_page(request, viewer, None)
        raise
    incident = await service.public(session=db, state=state, scope=scope)
    rows = await read_model.linked_tickets(
        session=db, incident_id=incident_id, scope=scope, limit=service.LISTED_TICKETS, offset=0
    )
    context = {
        "incident": incident,
        "linked": [(row, ClockSignal.of_row(row)) for row in rows],
        "manages": may_manage_incidents(viewer.principal),
        "is_open": incident.status == IncidentStatus.OPEN,
        "limited": scope != TicketScope(),
        "refusal": refusal,
        "done": DONE_TEXT.get(request.query_params.get("done", "")),
        "nav": "incidents",
    }
    return render(request, "incident.html", context, viewer=viewer, status_code=status_code)


@router.get("/incidents/{incident_id}")
async def incident_page(
    request: Request, incident_id: str, viewer: session.PageViewer, db: SessionDep, client: ClientDep
) -> Response:
    return await _incident_page(request, viewer, db, client, incident_id)


async def _refused_or_done(
    request: Request, viewer: session.Viewer, db: Any, client: Any, incident_id: str, done: str, act: Any
) -> Response:
    """Run `act` (a service call); a refusal re-renders the page with its sentence."""
    try:
        await act()
    except ApiError as err:
        if err.status_code == 404:
            return not_found_page(request, viewer, None)
        refusal = {"action": done, "status": err.status_code, "detail": err.detail}
        return await _incident_page(
            request, viewer, db, client, incident_id, refusal=refusal, status_code=err.status_code
        )
    except ValidationError as err:
        refusal = {
            "action": done,
            "status": 422,
            "detail": describe_validation([dict(e) for e in err.errors()]),
        }
        return await _incident_page(
            request, viewer, db, client, incident_id, refusal=refusal, status_code=422
        )
    return see_other(f"{_path(incident_id)}?done={done}")


@router.post("/incidents/{incident_id}/updates")
async def post_update(
    request: Request,
    incident_id: str,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
    message: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    async def act() -> None:
        body = IncidentUpdateCreate(message=message)
        await service.post_update(
            client=client,
            session=db,
            principal=viewer.principal,
            incident_id=incident_id,
            message=body.message,
            resolution=False,
            task_queue=settings.task_queue,
        )

    return await _refused_or_done(request, viewer, db, client, incident_id, "update", act)


@router.post("/incidents/{incident_id}/resolve")
async def resolve(
    request: Request,
    incident_id: str,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
    resolution: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    async def act() -> None:
        body = IncidentResolveCreate(resolution=resolution)
        await service.post_update(
            client=client,
            session=db,
            principal=viewer.principal,
            incident_id=incident_id,
            message=body.resolution,
            resolution=True,
            task_queue=settings.task_queue,
        )

    return await _refused_or_done(request, viewer, db, client, incident_id, "resolve", act)


@router.post("/incidents/{incident_id}/acknowledge")
async def acknowledge_page(
    request: Request, incident_id: str, viewer: session.FormViewer, db: SessionDep, client: ClientDep
) -> Response:
    """POST /incidents/{id}/acknowledge: the incident's page, acknowledged once."""

    async def act() -> None:
        await service.acknowledge_page(
            client=client, session=db, principal=viewer.principal, incident_id=incident_id
        )

    return await _refused_or_done(request, viewer, db, client, incident_id, "acknowledge", act)


@router.post("/incidents/{incident_id}/links/{ticket_id}/unlink")
async def unlink(
    request: Request,
    incident_id: str,
    ticket_id: str,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
) -> Response:
    async def act() -> None:
        await service.unlink(
            client=client,
            session=db,
            principal=viewer.principal,
            incident_id=incident_id,
            ticket_id=ticket_id,
        )

    return await _refused_or_done(request, viewer, db, client, incident_id, "unlink", act)


@router.post("/incidents/link")
async def link_ticket(
    request: Request,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
    ticket_id: Annotated[str, Form(max_length=200)] = "",
    incident_id: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The ticket page's "Link to incident": POST /incidents/{id}/links with this one ticket.
    A refusal comes back to the ticket page as its sentence."""
    try:
        await service.link(
            client=client,
            session=db,
            principal=viewer.principal,
            incident_id=incident_id,
            links=IncidentLinks(ticket_ids=[ticket_id]),
            task_queue=settings.task_queue,
        )
    except ApiError as err:
        if err.status_code == 404:  # the incident (a ticket out of reach is a 422 refusal)
            return not_found_page(request, viewer, None)
        return await ticket_refused(request, viewer, db, client, settings, ticket_id, "link-incident", err)
    except ValidationError as err:
        detail = describe_validation([dict(e) for e in err.errors()])
        return await ticket_refused(
            request, viewer, db, client, settings, ticket_id, "link-incident", ApiError(422, detail)
        )
    return see_other(f"/console/tickets/{quote(ticket_id, safe='')}?done=link-incident")
