"""/policy and /sla/deadline: what the contract promises, for sales and customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api import whatif_service as whatif
from api.auth import PrincipalDep, bearer, current_principal
from api.catalog_schemas import ContractUpdate, refusal
from api.deps import ClientDep, SessionDep
from api.errors import ApiError, problem_responses
from api.schemas import Problem
from store.catalog import CatalogRefused, ContractNotFound, edited_terms, get_contract_terms
from workflows import policy
from workflows.entitlement import (
    is_known_country,
    quote_first_response,
    quote_response_deadline,
    quoted_submission,
)
from workflows.enums import ProductType, Severity, Tier
from workflows.permissions import Capability, Grant, can_reach, grant
from workflows.policy import TicketRules, current
from workflows.terms import ContractTerms, DeadlineQuote
from workflows.whatif_report import GroupBy

router = APIRouter(tags=["policy"])

# A quote is for a ticket received within this long of now, either way: a bounded set of years
# whose holidays are ever looked up (and cached).
QUOTE_WINDOW = timedelta(days=3653)


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


@router.get(
    "/sla/deadline",
    response_model=DeadlineQuote,
    responses={401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
async def get_deadline(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    severity: Annotated[Severity, Query(description="1 critical .. 4 low")],
    submitted_at: Annotated[datetime, Query(description="ISO 8601; local to the time zone if naive")],
    tier: Tier | None = None,
    timezone: Annotated[str | None, Query(min_length=1, max_length=64, examples=["Europe/Berlin"])] = None,
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
    customer_id: Annotated[
        str | None,
        Query(
            max_length=100,
            description="quote on this customer's own contract, its overrides included, instead of "
            "the terms above; needs an API key that reaches the customer",
        ),
    ] = None,
) -> DeadlineQuote:
    """When is a first response due? The same answer the ticket workflow would give: the
    default terms of `tier`, `timezone` and the rest, or, with `customer_id` and a key, the
    customer's contract. Without a `subdivision`, only the country's nationwide holidays count."""
    _check_quote_bounds(submitted_at, country)
    if customer_id is not None:
        terms = await _contract_in_reach(request, session, credentials, customer_id)
        submitted = quoted_submission(submitted_at, terms.timezone)
        return quote_first_response(terms, severity=severity, submitted_at=submitted)
    if tier is None or timezone is None:
        missing = "tier" if tier is None else "timezone"
        raise ApiError(
            422,
            f"`{missing}` is needed to quote default terms; or name a contract with `customer_id` "
            "(and an API key that reaches it).",
            rule="quote_terms_missing",
        )
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


def _check_quote_bounds(submitted_at: datetime, country: str | None) -> None:
    """Refuse a quote that would compute holidays of far years or of an unknown country."""
    now = datetime.now(UTC)
    at = submitted_at if submitted_at.tzinfo else submitted_at.replace(tzinfo=UTC)
    if not now - QUOTE_WINDOW <= at <= now + QUOTE_WINDOW:
        raise ApiError(
            422,
            "submitted_at: quotes are for tickets received within 10 years of now "
            f"({(now - QUOTE_WINDOW).date()} to {(now + QUOTE_WINDOW).date()}); send a time in that window.",
            rule="submitted_at_out_of_range",
        )
    if country is not None and not is_known_country(country):
        raise ApiError(
            422,
            f"country: no public-holiday calendar for {country!r}; use an ISO 3166-1 code in upper "
            "case that the holiday calendars know, such as 'DE', 'GB' or 'US'.",
            rule="unknown_country",
        )


async def _contract_in_reach(
    request: Request,
    session: AsyncSession,
    credentials: HTTPAuthorizationCredentials | None,
    customer_id: str,
) -> ContractTerms:
    principal = await current_principal(request, credentials)
    terms = await get_contract_terms(session=session, customer_id=customer_id)
    # A customer outside the key's reach is as unknown as one that does not exist.
    if terms is None or not can_reach(
        current(), principal, customer_id=terms.customer_id, partner_id=terms.partner_id
    ):
        raise ApiError(
            404,
            f"No customer {customer_id!r}: use the customer id on your support contract.",
            rule="unknown_customer",
        )
    return terms


class SimulateBody(BaseModel):
    """A what-if request (DESIGN.md §8): a candidate policy document and a window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    candidate: dict[str, Any] | None = Field(
        default=None, description="a policy document, the same schema as GET /policy"
    )
    candidate_contract: ContractUpdate | None = Field(
        default=None,
        description="instead of `candidate`: a contract for `customer_id`, the same body as "
        "PUT /customers/{id}/contract; only that customer's tickets are simulated",
    )
    start: datetime = Field(alias="from", description="tickets received at or after this instant")
    to: datetime = Field(description="tickets received before this instant")
    customer_id: str | None = Field(default=None, max_length=200)
    group_by: GroupBy | None = None
    from_histories: bool = Field(
        default=False,
        description="replay the tickets from their Temporal histories instead of the read model's "
        "record of them (tickets filed before the read model kept one have only their history)",
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@router.post("/policy/simulate", responses=problem_responses(401, 403, 404, 422))
async def simulate_policy(
    body: SimulateBody, request: Request, client: ClientDep, principal: PrincipalDep
) -> dict[str, Any]:
    """What a candidate policy would have done to the tickets received in [from, to): each runs
    through the ticket machine with its recorded actions, under its pinned terms and under the
    candidate. Answers `{"tickets", "groups": [{"key", "before", "after"}], "flips": [{"ticket_id",
    "clock", "before", "after"}]}`. Changes nothing: no ticket, no notice, no workflow."""
    # Admin only, like the catalog (DESIGN.md §11): it reads every customer's tickets.
    if grant(policy.current(), principal, Capability.CATALOG) == Grant.NO:
        raise ApiError(
            403,
            f"Simulating a candidate policy needs an admin key; this request was made as {principal}.",
            rule="forbidden",
        )
    start, end = _aware(body.start), _aware(body.to)
    if end <= start:
        raise ApiError(422, "`to` must come after `from`.", rule="empty_window")
    rules, contract = await _simulated(body, request)
    return await whatif.simulate_window(
        client=client,
        sessionmaker=request.app.state.sessionmaker,
        rules=rules,
        contract=contract,
        start=start,
        end=end,
        customer_id=body.customer_id,
        group_by=body.group_by,
        from_histories=body.from_histories,
    )


async def _simulated(body: SimulateBody, request: Request) -> tuple[TicketRules | None, ContractTerms | None]:
    """The candidate of a what-if: a policy document, or one customer's contract (checked as
    PUT /customers/{id}/contract checks it, and written nowhere)."""
    if (body.candidate is None) == (body.candidate_contract is None):
        raise ApiError(
            422,
            "Send exactly one of `candidate` (a policy document) and `candidate_contract` (a "
            "contract, with `customer_id`).",
            rule="candidate",
        )
    if body.candidate is not None:
        try:
            return TicketRules.model_validate(body.candidate), None
        except ValidationError as err:
            raise RequestValidationError(
                [{**error, "loc": ("body", "candidate", *error["loc"])} for error in err.errors()]
            ) from None
    assert body.candidate_contract is not None
    if body.customer_id is None:
        raise ApiError(
            422, "A `candidate_contract` is one customer's: name it in `customer_id`.", rule="candidate"
        )
    async with request.app.state.sessionmaker() as session:
        try:
            terms = await edited_terms(
                session=session, customer_id=body.customer_id, **body.candidate_contract.model_dump()
            )
        except ContractNotFound:
            raise ApiError(
                404,
                f"No customer {body.customer_id!r}: check the id in GET /customers.",
                rule="unknown_customer",
            ) from None
        except CatalogRefused as err:
            raise refusal(err) from None
    return None, terms
