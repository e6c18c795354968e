"""/policy and /sla/deadline: what the contract promises, for sales and customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.schemas import DeadlinePublic, Problem
from workflows import policy
from workflows.calendars import add_open_time
from workflows.entitlement import build_entitlement, check_timezone
from workflows.models import ContractTerms, ProductType, Severity, Tier

router = APIRouter(tags=["policy"])


@router.get("/policy")
async def get_policy() -> dict[str, Any]:
    """The whole support and SLA policy as data, with its version."""
    return policy.policy_document()


def response_deadline(
    *,
    tier: Tier,
    severity: Severity,
    product_type: ProductType,
    submitted_at: datetime,
    timezone: str,
    country: str | None,
    coverage_24x7: bool,
) -> DeadlinePublic:
    """When a first response is due under the default terms. Shared by the API and the CLI."""
    check_timezone(timezone)
    if submitted_at.tzinfo is None:
        from zoneinfo import ZoneInfo

        submitted_at = submitted_at.replace(tzinfo=ZoneInfo(timezone))
    terms = ContractTerms(
        contract_id="quote",
        customer_id="quote",
        customer_name="quote",
        tier=tier,
        product_type=product_type,
        timezone=timezone,
        country=country.upper() if country else None,
        coverage_24x7=coverage_24x7,
        partner_tier=tier,
    )
    ent = build_entitlement(terms, received_at=submitted_at)
    target = ent.response_target(severity)
    due = add_open_time(
        submitted_at, timedelta(minutes=target.minutes), target.calendar, ent.timezone, ent.holidays
    )
    return DeadlinePublic(
        response_due=due.astimezone(UTC),
        target=target.label,
        target_minutes=target.minutes,
        calendar=target.calendar,
        binding=target.binding,
        policy_version=ent.policy_version,
    )


@router.get("/sla/deadline", response_model=DeadlinePublic, responses={422: {"model": Problem}})
async def get_deadline(
    tier: Tier,
    severity: Annotated[Severity, Query(description="1 critical .. 4 low")],
    submitted_at: Annotated[datetime, Query(description="ISO 8601; local to `timezone` if naive")],
    timezone: Annotated[str, Query(min_length=1, max_length=64, examples=["Europe/Berlin"])],
    product: ProductType = ProductType.PLATFORM,
    country: Annotated[str | None, Query(min_length=2, max_length=3, examples=["DE"])] = None,
    coverage_24x7: bool = False,
) -> DeadlinePublic:
    """When is a first response due? The same answer the ticket workflow would give."""
    return response_deadline(
        tier=tier,
        severity=severity,
        product_type=product,
        submitted_at=submitted_at,
        timezone=timezone,
        country=country,
        coverage_24x7=coverage_24x7,
    )
