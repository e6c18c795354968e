"""/customers: onboard customers, edit their contracts, deactivate them. Admin keys only."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from api.auth import AdminDep
from api.catalog_schemas import ContractPublic, ContractUpdate, CustomerCreate, CustomerPublic, refusal
from api.deps import SessionDep
from api.errors import ApiError, problem_responses
from store import catalog

log = logging.getLogger("escalator.catalog")

router = APIRouter(prefix="/customers", tags=["customers"])

# Every catalog route needs an admin key.
REFUSALS = problem_responses(401, 403)


def _unknown_customer(customer_id: str) -> ApiError:
    return ApiError(
        404,
        f"No customer {customer_id!r}: GET /customers lists them, POST /customers onboards one.",
        rule="unknown_customer",
    )


@router.get("", response_model=list[CustomerPublic], responses=REFUSALS)
async def list_customers(
    admin: AdminDep, session: SessionDep, include_inactive: bool = False
) -> list[CustomerPublic]:
    """Customers by id, each with its contract; deactivated ones too with `include_inactive`."""
    found = await catalog.list_customers(session=session, include_inactive=include_inactive)
    return [CustomerPublic.of(customer) for customer in found]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerPublic,
    responses=REFUSALS | problem_responses(409, 422),
)
async def create_customer(
    body: CustomerCreate, response: Response, admin: AdminDep, session: SessionDep
) -> CustomerPublic:
    """Onboard a customer with its contract (revision 1). Its tickets can be filed at once."""
    try:
        created = await catalog.create_customer(
            session=session, customer_id=body.id, name=body.name, **body.contract.model_dump()
        )
    except catalog.CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s onboarded customer %s (%s)", admin, created.id, body.contract.tier)
    response.headers["Location"] = f"/customers/{created.id}"
    return CustomerPublic.of(created)


@router.get("/{customer_id}", response_model=CustomerPublic, responses=REFUSALS | problem_responses(404))
async def get_customer(customer_id: str, admin: AdminDep, session: SessionDep) -> CustomerPublic:
    found = await catalog.get_customer(session=session, customer_id=customer_id)
    if found is None:
        raise _unknown_customer(customer_id)
    return CustomerPublic.of(found)


@router.delete("/{customer_id}", response_model=CustomerPublic, responses=REFUSALS | problem_responses(404))
async def deactivate_customer(customer_id: str, admin: AdminDep, session: SessionDep) -> CustomerPublic:
    """Deactivate: no new tickets. Open tickets run on; the contract stays for the record."""
    found = await catalog.deactivate_customer(session=session, customer_id=customer_id)
    if found is None:
        raise _unknown_customer(customer_id)
    log.info("%s deactivated customer %s", admin, customer_id)
    return CustomerPublic.of(found)


@router.get(
    "/{customer_id}/contract", response_model=ContractPublic, responses=REFUSALS | problem_responses(404)
)
async def get_contract(customer_id: str, admin: AdminDep, session: SessionDep) -> ContractPublic:
    found = await catalog.get_customer(session=session, customer_id=customer_id)
    if found is None or found.contract is None:
        raise _unknown_customer(customer_id)
    return ContractPublic.of(found.contract)


@router.put(
    "/{customer_id}/contract",
    response_model=ContractPublic,
    responses=REFUSALS | problem_responses(404, 409, 422),
)
async def replace_contract(
    customer_id: str, body: ContractUpdate, admin: AdminDep, session: SessionDep
) -> ContractPublic:
    """Replace the contract's terms and bump its revision. Open tickets keep the terms they
    were filed under; new tickets get these."""
    try:
        terms = await catalog.update_contract(session=session, customer_id=customer_id, **body.model_dump())
    except catalog.ContractNotFound:
        raise _unknown_customer(customer_id) from None
    except catalog.CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s edited the contract of %s (revision %d)", admin, customer_id, terms.revision)
    return ContractPublic.of(terms)
