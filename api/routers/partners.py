"""/partners: the partners who run first-line support for their own customers. Admin keys only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from activities import catalog
from api.auth import AdminDep
from api.catalog_schemas import PartnerCreate, PartnerPublic, refusal
from api.deps import SessionDep
from api.schemas import Problem

log = logging.getLogger("escalator.catalog")

router = APIRouter(prefix="/partners", tags=["partners"])

REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No API key, or an unknown or revoked one"},
    403: {"model": Problem, "description": "Not an admin key"},
}


@router.get("", response_model=list[PartnerPublic], responses=REFUSALS)
async def list_partners(admin: AdminDep, session: SessionDep) -> list[PartnerPublic]:
    return [PartnerPublic.of(partner) for partner in await catalog.list_partners(session=session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PartnerPublic,
    responses={**REFUSALS, 409: {"model": Problem, "description": "The id is taken"}},
)
async def create_partner(
    body: PartnerCreate, response: Response, admin: AdminDep, session: SessionDep
) -> PartnerPublic:
    """Register a partner; then its customers' contracts can name it (`partner_delivered`)."""
    try:
        created = await catalog.create_partner(
            session=session, partner_id=body.id, name=body.name, connectsoft_tier=body.connectsoft_tier
        )
    except catalog.CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s registered partner %s", admin, created.id)
    response.headers["Location"] = f"/partners/{created.id}"
    return PartnerPublic.of(created)
