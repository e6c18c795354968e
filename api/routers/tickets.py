"""/tickets: intake, live state, list, timeline and the actions on a ticket.

Every route takes the caller's principal. A ticket outside its reach is a 404 everywhere;
an action it may not take on a ticket it can see is a 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api import incident_intake
from api import tickets_service as service
from api.actions import ActionRoute, action_routes
from api.auth import PrincipalDep
from api.deps import ClientDep, SessionDep, SettingsDep, TermsDep
from api.errors import ApiError, problem_responses
from api.schemas import NotificationList, NotificationPublic, TicketCreate, TicketList, TicketPublic, Timeline
from store import notifications
from store import tickets as read_model
from workflows.enums import Audience, NoticeChannel, PageAction, Severity, TicketStatus, Tier
from workflows.models import Principal, TicketRow
from workflows.permissions import Capability, TicketScope, can_reach, forbidden_reason
from workflows.policy import current

router = APIRouter(prefix="/tickets", tags=["tickets"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Send one to make a retry apply only once. The same key with a different "
        "request is refused (422).",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketPublic,
    responses={
        200: {"model": TicketPublic, "description": "Already filed with this Idempotency-Key"},
        **problem_responses(401, 403, 422),
    },
)
async def create_ticket(
    body: TicketCreate,
    response: Response,
    principal: PrincipalDep,
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    terms: TermsDep,
    idempotency_key: IdempotencyKey = None,
) -> TicketPublic:
    """File a ticket for a customer within the caller's reach."""
    state, created = await service.open_ticket(
        client=client,
        session=session,
        task_queue=settings.task_queue,
        principal=principal,
        request=body,
        idempotency_key=idempotency_key,
        terms_by_revision=terms,
        incident_cache_seconds=settings.incident_cache_seconds,
        auto_incident=incident_intake.auto_incident_rule(settings),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/tickets/{state.ticket_id}"
    return TicketPublic.of(state)


@router.get("", response_model=TicketList, responses=problem_responses(401, 422))
async def list_tickets(
    principal: PrincipalDep,
    session: SessionDep,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
    tier: Tier | None = None,
    severity: Severity | None = None,
    breached: Annotated[bool | None, Query(description="ConnectSoft breached an SLA")] = None,
    partner_breached: Annotated[bool | None, Query(description="The partner's line breached")] = None,
    incident_id: Annotated[
        str | None, Query(max_length=64, description="Linked to this major incident")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TicketList:
    """Tickets within the caller's reach, from the read model, newest first."""
    rows, total = await read_model.list_tickets(
        session=session,
        scope=TicketScope.of(current(), principal),
        customer_id=customer_id,
        status=status_,
        tier=tier,
        severity=severity,
        breached=breached,
        partner_breached=partner_breached,
        incident_id=incident_id,
        limit=limit,
        offset=offset,
    )
    return TicketList(items=rows, total=total, limit=limit, offset=offset)


@router.get("/{ticket_id}", response_model=TicketPublic, responses=problem_responses(401, 404))
async def get_ticket(ticket_id: str, principal: PrincipalDep, client: ClientDep) -> TicketPublic:
    """Live state from the ticket's workflow: every SLA clock with its due time and status."""
    state = await service.ticket_state(client=client, principal=principal, ticket_id=ticket_id)
    return TicketPublic.of(state)


async def _reachable_row(session: AsyncSession, principal: Principal, ticket_id: str) -> TicketRow:
    """The ticket's read-model row, or the 404 a missing ticket gets when it is out of reach."""
    row = await read_model.get_ticket_row(session=session, ticket_id=ticket_id)
    if row is None or not can_reach(
        current(), principal, customer_id=row.customer_id, partner_id=row.partner_id
    ):
        raise service.not_found(ticket_id)
    return row


@router.get("/{ticket_id}/timeline", response_model=Timeline, responses=problem_responses(401, 404))
async def get_timeline(ticket_id: str, principal: PrincipalDep, session: SessionDep) -> Timeline:
    """Every recorded event, in order; internal notes only for those who may read them."""
    await _reachable_row(session, principal, ticket_id)
    events = await read_model.get_timeline(session=session, ticket_id=ticket_id)
    return Timeline(ticket_id=ticket_id, events=service.visible_events(principal, events))


@router.get(
    "/{ticket_id}/notifications",
    response_model=NotificationList,
    responses=problem_responses(401, 403, 404),
)
async def get_notifications(ticket_id: str, principal: PrincipalDep, session: SessionDep) -> NotificationList:
    """Every notice the ticket raised and how it went out: channel, recipients, sink, attempts,
    last error, delivery time. Admins and support only."""
    await _reachable_row(session, principal, ticket_id)
    reason = forbidden_reason(current(), principal, Capability.READ_NOTIFICATIONS)
    if reason is not None:
        raise ApiError(403, reason, rule="forbidden")
    rows = await notifications.list_deliveries(session=session, ticket_id=ticket_id)
    return NotificationList(
        ticket_id=ticket_id,
        notifications=[
            NotificationPublic(
                key=each.key,
                audience=Audience(each.audience),
                channel=NoticeChannel(each.channel) if each.channel else None,
                page_action=PageAction(each.page_action) if each.page_action else None,
                subject=each.subject,
                recipients=[who for who in (each.recipients or "").split(", ") if who],
                sink=each.sink,
                attempts=each.attempts,
                last_error=each.last_error,
                last_attempt_at=each.last_attempt_at,
                delivered_at=each.delivered_at,
                created_at=each.created_at,
                incident_id=each.incident_id,
                group_key=each.group_key,
            )
            for each in rows
        ],
    )


ActionEndpoint = Callable[..., Awaitable[TicketPublic]]


def _action_endpoint(route: ActionRoute) -> ActionEndpoint:
    async def endpoint(
        ticket_id: str,
        body: BaseModel,
        principal: PrincipalDep,
        client: ClientDep,
        session: SessionDep,
        idempotency_key: IdempotencyKey = None,
    ) -> TicketPublic:
        state = await service.act(
            client=client,
            session=session,
            principal=principal,
            ticket_id=ticket_id,
            update=route.update,
            action=route.action(body, principal),
            idempotency_key=idempotency_key,
            for_a_person=True,
        )
        return TicketPublic.of(state)

    # FastAPI reads the body's schema from the annotation: each action has its own.
    annotations: dict[str, Any] = dict(endpoint.__annotations__)
    annotations["body"] = route.body
    endpoint.__annotations__ = annotations
    endpoint.__name__ = route.update.replace("-", "_")
    endpoint.__doc__ = route.summary
    return endpoint


def action_router() -> APIRouter:
    """`POST /tickets/{id}/<update>` for every action registered when the app is made."""
    actions = APIRouter(prefix="/tickets", tags=["tickets"])
    for route in action_routes():
        actions.add_api_route(
            f"/{{ticket_id}}/{route.update}",
            _action_endpoint(route),
            methods=["POST"],
            response_model=TicketPublic,
            responses=problem_responses(401, 403, 404, 409, 422),
            summary=route.update.replace("-", " ").capitalize(),
        )
    return actions
