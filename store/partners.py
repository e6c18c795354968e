"""Partners: who delivers first-line support to its own customers, and its own agreement with
ConnectSoft (DESIGN.md §6)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import CatalogRefused, DuplicateId, check_id, check_name
from store.db import Partner
from workflows.enums import Tier


class CatalogPartner(BaseModel):
    """A partner and its own agreement with ConnectSoft: the tier and 24/7 option that set
    what ConnectSoft owes on its customers' tickets (DESIGN.md §6)."""

    id: str
    name: str
    connectsoft_tier: Tier
    coverage_24x7: bool = False


async def create_partner(
    *,
    session: AsyncSession,
    partner_id: str,
    name: str,
    connectsoft_tier: Tier | str,
    coverage_24x7: bool = False,
) -> CatalogPartner:
    """Register a partner (who delivers first-line support to its own customers) with its own
    agreement with ConnectSoft, and commit. Its customers' tickets pin that agreement at
    intake (DESIGN.md §6)."""
    check_id("id", partner_id)
    name = check_name("name", name)
    try:
        tier = Tier(connectsoft_tier)
    except ValueError:
        raise CatalogRefused(
            "connectsoft_tier", "invalid_tier", f"use one of {', '.join(t.value for t in Tier)}."
        ) from None
    if coverage_24x7 and tier != Tier.PREMIUM:
        raise CatalogRefused(
            "coverage_24x7",
            "coverage_24x7_premium_only",
            f"the 24/7 option is for Premium agreements; this one is {tier.value}.",
        )
    duplicate = DuplicateId("id", "duplicate_partner", f"partner {partner_id!r} already exists.")
    if await session.get(Partner, partner_id) is not None:
        raise duplicate
    session.add(Partner(id=partner_id, name=name, connectsoft_tier=tier.value, coverage_24x7=coverage_24x7))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise duplicate from None
    return CatalogPartner(id=partner_id, name=name, connectsoft_tier=tier, coverage_24x7=coverage_24x7)


async def list_partners(*, session: AsyncSession) -> list[CatalogPartner]:
    partners = await session.scalars(select(Partner).order_by(Partner.id))
    return [
        CatalogPartner(
            id=p.id, name=p.name, connectsoft_tier=Tier(p.connectsoft_tier), coverage_24x7=p.coverage_24x7
        )
        for p in partners
    ]
