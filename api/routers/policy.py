"""/policy and /sla/deadline: what the contract promises, for sales and customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.schemas import Problem
from workflows import policy, routing
from workflows.entitlement import quote_response_deadline
from workflows.models import DeadlineQuote, ProductType, Severity, Tier

router = APIRouter(tags=["policy"])


@router.get("/policy")
async def get_policy() -> dict[str, Any]:
    """The whole support and SLA policy as data, with its version, and who is told of what on
    which channel (`notification_routing`)."""
    return {**policy.policy_document(), "notification_routing": routing.routing_document()}


@router.get("/sla/deadline", response_model=DeadlineQuote, responses={422: {"model": Problem}})
async def get_deadline(
    tier: Tier,
    severity: Annotated[Severity, Query(description="1 critical .. 4 low")],
    submitted_at: Annotated[datetime, Query(description="ISO 8601; local to `timezone` if naive")],
    timezone: Annotated[str, Query(min_length=1, max_length=64, examples=["Europe/Berlin"])],
    product: ProductType = ProductType.PLATFORM,
    country: Annotated[str | None, Query(min_length=2, max_length=3, examples=["DE"])] = None,
    subdivision: Annotated[
        str | None,
        Query(
            min_length=4,
            max_length=6,
            examples=["GB-ENG"],
            description="ISO 3166-2: the subdivision's holidays too (DESIGN.md §3); names the country",
        ),
    ] = None,
    coverage_24x7: bool = False,
) -> DeadlineQuote:
    """When is a first response due? The same answer the ticket workflow would give.
    Without a `subdivision`, only the country's nationwide holidays count."""
    return quote_response_deadline(
        tier=tier,
        severity=severity,
        product_type=product,
        submitted_at=submitted_at,
        timezone=timezone,
        country=country,
        subdivision=subdivision,
        coverage_24x7=coverage_24x7,
    )
