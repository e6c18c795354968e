"""/policy and /sla/deadline: what the contract promises, for sales and customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.errors import ApiError
from api.schemas import Problem
from workflows import policy
from workflows.entitlement import quote_response_deadline
from workflows.models import DeadlineQuote, ProductType, Severity, Tier

router = APIRouter(tags=["policy"])


@router.get("/policy", responses={404: {"model": Problem}})
async def get_policy(
    version: Annotated[
        str | None, Query(max_length=64, description="a released version; the current one by default")
    ] = None,
) -> dict[str, Any]:
    """The policy document a ticket pins: exactly policies/<version>.json (its JSON schema is
    policies/schema.json). Targets, calendars, the ladder, routing and paging, the permission
    table, auto-close: everything a ticket decides with."""
    try:
        rules = policy.rules_for(version) if version is not None else policy.current()
    except policy.UnknownPolicyVersion:
        known = ", ".join(policy.registered())
        raise ApiError(
            404,
            f"No policy version {version!r}; the released versions are {known}.",
            rule="unknown_policy_version",
        ) from None
    return rules.document()


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
