"""/reports: SLA attainment, response and resolution times, and uptime (DESIGN.md §12).

Reports are read like the ticket list: a partner's cover its customers' tickets, a
customer's only its own, admins' and support's all. Answers are cached for a short time per
reach and parameters (api/report_cache.py), and each call spends a token of the key's report
rate limit (api/rate_limit.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from api import report_cache
from api.auth import PrincipalDep
from api.deps import SessionDep
from api.errors import ApiError, problem_responses
from api.report_schemas import (
    CSV_MEDIA_TYPE,
    SVG_MEDIA_TYPE,
    SlaReportPublic,
    UptimeReportPublic,
    prefers_csv,
)
from store import report_sql, sla_report
from store.catalog import CATALOG_ID, CATALOG_ID_RULE
from workflows.models import Principal
from workflows.permissions import Capability, Grant, TicketScope, grant
from workflows.policy import current

router = APIRouter(prefix="/reports", tags=["reports"])

REFUSALS = problem_responses(401, 403, 422, 429)

From = Annotated[
    datetime,
    Query(alias="from", description="Tickets received at or after this instant (ISO 8601; UTC if naive)"),
]
To = Annotated[datetime, Query(description="Tickets received before this instant (ISO 8601; UTC if naive)")]
Accept = Annotated[str | None, Header(description="`text/csv` for CSV; JSON otherwise")]


def _csv_or_json(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    }


def _reach(principal: Principal) -> TicketScope:
    """The principal's reach as report scope, the same as the ticket list's."""
    if grant(current(), principal, Capability.READ) == Grant.NO:
        raise ApiError(403, f"Reports are not readable as {principal}.", rule="forbidden")
    return TicketScope.of(current(), principal)


def _period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    try:
        return report_sql.check_period(start, end)
    except report_sql.ReportRangeError as err:
        raise ApiError(422, err.message, rule=err.rule) from None


@router.get(
    "/sla",
    response_model=SlaReportPublic,
    responses=_csv_or_json("The groups, as JSON or (Accept: text/csv) CSV") | REFUSALS,
)
async def get_sla_report(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    start: From,
    to: To,
    group_by: sla_report.ReportGroupBy = sla_report.ReportGroupBy.TIER,
    accept: Accept = None,
) -> Any:
    """First-response attainment, MTTA p50/p90, MTTR and escalations per group, for the
    tickets received in [from, to) within the caller's reach (at most 366 days)."""
    start, end = _period(start, to)
    groups = await report_cache.sla_groups(
        request, session=session, start=start, end=end, group_by=group_by, scope=_reach(principal)
    )
    report = SlaReportPublic(groups=groups)
    if prefers_csv(accept):
        return Response(report.csv(), media_type=CSV_MEDIA_TYPE)
    return report


@router.get(
    "/sla/chart",
    response_class=Response,
    responses={
        200: {"description": "An SVG chart", "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **REFUSALS,
    },
)
async def get_sla_chart(
    request: Request, principal: PrincipalDep, session: SessionDep, start: From, to: To
) -> Response:
    """First-response attainment per week (line) and breaches per week stacked by line (bars),
    for tickets received in [from, to) within the caller's reach, as SVG."""
    start, end = _period(start, to)
    svg = await report_cache.sla_chart(
        request, session=session, start=start, end=end, scope=_reach(principal)
    )
    return Response(svg, media_type=SVG_MEDIA_TYPE)


@router.get(
    "/uptime",
    response_model=UptimeReportPublic,
    responses=_csv_or_json("One row per customer and product, as JSON or (Accept: text/csv) CSV") | REFUSALS,
)
async def get_uptime_report(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    month: Annotated[str, Query(max_length=32, description="A UTC calendar month, YYYY-MM")],
    customer: Annotated[
        str | None, Query(max_length=100, pattern=CATALOG_ID.pattern, description=CATALOG_ID_RULE)
    ] = None,
    accept: Accept = None,
) -> Any:
    """Availability per customer and product in a UTC calendar month, against the contract's
    uptime target, with the downtime allowance left. A customer outside the caller's reach
    has no rows, as in the ticket list."""
    try:
        items = await report_cache.uptime_rows(
            request, session=session, month=month, customer_id=customer, scope=_reach(principal)
        )
    except report_sql.ReportRangeError as err:
        raise ApiError(422, err.message, rule=err.rule) from None
    report = UptimeReportPublic(month=month, items=items)
    if prefers_csv(accept):
        return Response(report.csv(), media_type=CSV_MEDIA_TYPE)
    return report
