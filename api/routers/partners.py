"""/partners: the partners who run first-line support for their own customers. Admin keys only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from api.auth import AdminDep
from api.catalog_schemas import PartnerCreate, PartnerPublic, refusal
from api.deps import SessionDep
from api.errors import problem_responses
from store import catalog, partners

log = logging.getLogger("escalator.catalog")

router = APIRouter(prefix="/partners", tags=["partners"])

# Every catalog route needs an admin key.
REFUSALS = problem_responses(401, 403)


@router.get("", response_model=list[PartnerPublic], responses=REFUSALS)
async def list_partners(admin: AdminDep, session: SessionDep) -> list[PartnerPublic]:
    return [PartnerPublic.of(partner) for partner in await partners.list_partners(session=session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PartnerPublic,
    responses=REFUSALS | problem_responses(409),
)
async def create_partner(
    body: PartnerCreate, response: Response, admin: AdminDep, session: SessionDep
) -> PartnerPublic:
    """Register a partner; then its customers' contracts can name it (`partner_delivered`)."""
    try:
        created = await partners.create_partner(
            session=session,
            partner_id=body.id,
            name=body.name,
            connectsoft_tier=body.connectsoft_tier,
            coverage_24x7=body.coverage_24x7,
        )
    except catalog.CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s registered partner %s", admin, created.id)
    response.headers["Location"] = f"/partners/{created.id}"
    return PartnerPublic.of(created)
