"""/support-teams: where ConnectSoft's own audiences are reached. Admin keys only.

One team per audience: support_l1, support_l2, engineering_l3, leadership_l4, support_lead
and on_call, each with an email, a chat channel and the zone to show due times in. Pager
routing keys are settings (ESCALATOR_PAGER_ROUTING_KEY), never stored here.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.auth import AdminDep
from api.catalog_schemas import refusal
from api.contact_schemas import SupportTeamPublic, SupportTeamUpdate
from api.deps import SessionDep
from api.errors import ApiError, problem_responses
from store import contacts
from store.catalog import CatalogRefused

log = logging.getLogger("escalator.catalog")

router = APIRouter(prefix="/support-teams", tags=["support-teams"])

# Every catalog route needs an admin key.
REFUSALS = problem_responses(401, 403)
TEAMS = ", ".join(audience.value for audience in contacts.TEAM_AUDIENCES)


def _unknown_team(audience: str) -> ApiError:
    return ApiError(
        404,
        f"No support team {audience!r}: the teams are {TEAMS}. Customers' and partners' contacts "
        "are at /customers/{id}/contacts and /partners/{id}/contacts.",
        rule="unknown_support_team",
    )


@router.get("", response_model=list[SupportTeamPublic], responses=REFUSALS)
async def list_support_teams(admin: AdminDep, session: SessionDep) -> list[SupportTeamPublic]:
    """The teams that are set up, L1 to L4, then the support lead and on-call."""
    return [SupportTeamPublic.of(team) for team in await contacts.list_support_teams(session=session)]


@router.get("/{audience}", response_model=SupportTeamPublic, responses=REFUSALS | problem_responses(404))
async def get_support_team(audience: str, admin: AdminDep, session: SessionDep) -> SupportTeamPublic:
    try:
        found = await contacts.get_support_team(session=session, audience=audience)
    except contacts.UnknownTeam:
        raise _unknown_team(audience) from None
    if found is None:
        raise ApiError(
            404,
            f"Support team {audience!r} is not set up yet: PUT /support-teams/{audience} sets it up.",
            rule="support_team_not_set_up",
        )
    return SupportTeamPublic.of(found)


@router.put("/{audience}", response_model=SupportTeamPublic, responses=REFUSALS | problem_responses(404, 422))
async def replace_support_team(
    audience: str, body: SupportTeamUpdate, admin: AdminDep, session: SessionDep
) -> SupportTeamPublic:
    """Set up or replace the team: an email, a chat channel, or both, and its time zone."""
    try:
        saved = await contacts.set_support_team(session=session, audience=audience, **body.model_dump())
    except contacts.UnknownTeam:
        raise _unknown_team(audience) from None
    except CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s set up support team %s", admin, saved.audience)
    return SupportTeamPublic.of(saved)
