"""/tickets: intake, live state, list, timeline and the actions on a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel

from activities import read_model
from api import tickets_service as service
from api.deps import ClientDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import Problem, TicketCreate, TicketList, TicketPublic, Timeline
from workflows.models import (
    Acknowledge,
    ChangeSeverity,
    Close,
    Comment,
    Escalate,
    Handback,
    Handoff,
    Reopen,
    Resolve,
    Resume,
    Severity,
    TicketStatus,
    Tier,
    WaitOnCustomer,
)

router = APIRouter(prefix="/tickets", tags=["tickets"])

REFUSALS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such ticket"},
    409: {"model": Problem, "description": "Not possible in the ticket's current state"},
    422: {"model": Problem, "description": "Not allowed for this ticket or request"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketPublic,
    responses={
        200: {"model": TicketPublic, "description": "Already filed with this Idempotency-Key"},
        422: REFUSALS[422],
    },
)
async def create_ticket(
    body: TicketCreate,
    response: Response,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TicketPublic:
    """File a ticket. Send an `Idempotency-Key` header to make retries safe."""
    state, created = await service.open_ticket(
        client=client,
        session=session,
        task_queue=settings.task_queue,
        request=body,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/tickets/{state.ticket_id}"
    return TicketPublic.of(state)


@router.get("", response_model=TicketList)
async def list_tickets(
    session: SessionDep,
    customer_id: str | None = None,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
    tier: Tier | None = None,
    severity: Severity | None = None,
    breached: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TicketList:
    """Tickets from the read model, newest first."""
    rows, total = await read_model.list_tickets(
        session=session,
        customer_id=customer_id,
        status=status_,
        tier=tier,
        severity=severity,
        breached=breached,
        limit=limit,
        offset=offset,
    )
    return TicketList(items=rows, total=total, limit=limit, offset=offset)


@router.get("/{ticket_id}", response_model=TicketPublic, responses={404: REFUSALS[404]})
async def get_ticket(ticket_id: str, client: ClientDep) -> TicketPublic:
    """Live state from the ticket's workflow: every SLA clock with its due time and status."""
    return TicketPublic.of(await service.ticket_state(client=client, ticket_id=ticket_id))


@router.get("/{ticket_id}/timeline", response_model=Timeline, responses={404: REFUSALS[404]})
async def get_timeline(ticket_id: str, session: SessionDep) -> Timeline:
    events = await read_model.get_timeline(session=session, ticket_id=ticket_id)
    if not events and await read_model.get_ticket_row(session=session, ticket_id=ticket_id) is None:
        raise ApiError(
            404, f"No ticket {ticket_id!r}: check the id returned when it was filed.", rule="unknown_ticket"
        )
    return Timeline(ticket_id=ticket_id, events=events)


IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Send one to make a retried action apply only once."),
]


async def _act(
    client: ClientDep, ticket_id: str, update: str, action: BaseModel, idempotency_key: str | None
) -> TicketPublic:
    return TicketPublic.of(
        await service.act(
            client=client, ticket_id=ticket_id, update=update, action=action, update_id=idempotency_key
        )
    )


@router.post("/{ticket_id}/acknowledge", response_model=TicketPublic, responses=REFUSALS)
async def acknowledge(
    ticket_id: str, body: Acknowledge, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    """First response (or acknowledgement of an escalation) by the level that owns the ticket."""
    return await _act(client, ticket_id, "acknowledge", body, idempotency_key)


@router.post("/{ticket_id}/comment", response_model=TicketPublic, responses=REFUSALS)
async def comment(
    ticket_id: str, body: Comment, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "comment", body, idempotency_key)


@router.post("/{ticket_id}/escalate", response_model=TicketPublic, responses=REFUSALS)
async def escalate(
    ticket_id: str, body: Escalate, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    """Climb the ladder, naming a trigger of the target level, within the entitlement."""
    return await _act(client, ticket_id, "escalate", body, idempotency_key)


@router.post("/{ticket_id}/handoff", response_model=TicketPublic, responses=REFUSALS)
async def handoff(
    ticket_id: str, body: Handoff, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    """Partner first line hands off to ConnectSoft's second line."""
    return await _act(client, ticket_id, "handoff", body, idempotency_key)


@router.post("/{ticket_id}/handback", response_model=TicketPublic, responses=REFUSALS)
async def handback(
    ticket_id: str, body: Handback, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "handback", body, idempotency_key)


@router.post("/{ticket_id}/change-severity", response_model=TicketPublic, responses=REFUSALS)
async def change_severity(
    ticket_id: str, body: ChangeSeverity, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    """Recomputes every clock from the original intake time."""
    return await _act(client, ticket_id, "change-severity", body, idempotency_key)


@router.post("/{ticket_id}/wait-on-customer", response_model=TicketPublic, responses=REFUSALS)
async def wait_on_customer(
    ticket_id: str, body: WaitOnCustomer, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "wait-on-customer", body, idempotency_key)


@router.post("/{ticket_id}/resume", response_model=TicketPublic, responses=REFUSALS)
async def resume(
    ticket_id: str, body: Resume, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "resume", body, idempotency_key)


@router.post("/{ticket_id}/resolve", response_model=TicketPublic, responses=REFUSALS)
async def resolve(
    ticket_id: str, body: Resolve, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "resolve", body, idempotency_key)


@router.post("/{ticket_id}/reopen", response_model=TicketPublic, responses=REFUSALS)
async def reopen(
    ticket_id: str, body: Reopen, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "reopen", body, idempotency_key)


@router.post("/{ticket_id}/close", response_model=TicketPublic, responses=REFUSALS)
async def close(
    ticket_id: str, body: Close, client: ClientDep, idempotency_key: IdempotencyKey = None
) -> TicketPublic:
    return await _act(client, ticket_id, "close", body, idempotency_key)
