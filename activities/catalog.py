"""The customer catalog: customers, partners and their contracts.

Intake reads a customer's ContractTerms from here and pins them into the ticket's
entitlement, so editing a contract later never changes an open ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.db import Contract, Customer, Partner, dialect_insert, utcnow
from workflows.models import ContractTerms, ProductType, Tier


class ContractNotFound(LookupError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no active contract")
        self.customer_id = customer_id


@dataclass(frozen=True)
class PartnerSeed:
    id: str
    name: str
    connectsoft_tier: Tier


@dataclass(frozen=True)
class DemoCatalog:
    partners: tuple[PartnerSeed, ...]
    contracts: tuple[ContractTerms, ...]


# DESIGN.md section 8. Time zones for umbrella and contoso are assumed (the table is silent).
DEMO_CATALOG: Final = DemoCatalog(
    partners=(PartnerSeed(id="northwind", name="Northwind", connectsoft_tier=Tier.PREMIUM),),
    contracts=(
        ContractTerms(
            contract_id="ctr-acme",
            customer_id="acme",
            customer_name="Acme",
            tier=Tier.PREMIUM,
            product_type=ProductType.PLATFORM,
            timezone="Europe/Berlin",
            country="DE",
        ),
        ContractTerms(
            contract_id="ctr-globex",
            customer_id="globex",
            customer_name="Globex",
            tier=Tier.STANDARD,
            product_type=ProductType.PLATFORM,
            timezone="America/New_York",
            country="US",
        ),
        ContractTerms(
            contract_id="ctr-initech",
            customer_id="initech",
            customer_name="Initech",
            tier=Tier.BASIC,
            product_type=ProductType.PLATFORM,
            timezone="UTC",
        ),
        ContractTerms(
            contract_id="ctr-umbrella",
            customer_id="umbrella",
            customer_name="Umbrella",
            tier=Tier.STANDARD,
            product_type=ProductType.BESPOKE,
            timezone="Europe/London",
            country="GB",
            project="umbrella-portal",
        ),
        ContractTerms(
            contract_id="ctr-contoso",
            customer_id="contoso",
            customer_name="Contoso",
            tier=Tier.PREMIUM,
            product_type=ProductType.PARTNER_DELIVERED,
            timezone="Europe/Amsterdam",
            country="NL",
            partner_id="northwind",
            partner_tier=Tier.PREMIUM,
        ),
    ),
)

# Contract columns a catalog edit may change; ids and names are not contract terms.
EDITABLE_TERMS: Final = frozenset(
    {
        "tier",
        "product_type",
        "timezone",
        "country",
        "coverage_24x7",
        "partner_id",
        "project",
        "overrides",
    }
)


def _contract_columns(terms: ContractTerms) -> dict[str, Any]:
    dumped = terms.model_dump(mode="json", include=set(EDITABLE_TERMS))
    return dumped | {"id": terms.contract_id, "customer_id": terms.customer_id}


async def seed_demo_catalog(*, session: AsyncSession) -> None:
    """Insert the demo catalog where absent, then commit. Existing rows are never changed."""
    for partner in DEMO_CATALOG.partners:
        await session.execute(
            dialect_insert(session, Partner)
            .values(id=partner.id, name=partner.name, connectsoft_tier=partner.connectsoft_tier)
            .on_conflict_do_nothing()
        )
    for terms in DEMO_CATALOG.contracts:
        await session.execute(
            dialect_insert(session, Customer)
            .values(id=terms.customer_id, name=terms.customer_name)
            .on_conflict_do_nothing()
        )
        # No conflict target: a customer who already has another active contract keeps it.
        await session.execute(
            dialect_insert(session, Contract).values(_contract_columns(terms)).on_conflict_do_nothing()
        )
    await session.commit()


def _contracts_with_parties() -> Select[Contract, Customer, Partner]:
    # Partner is None for contracts without one (outer join).
    return (
        select(Contract, Customer, Partner)
        .join(Customer, Contract.customer_id == Customer.id)
        .outerjoin(Partner, Contract.partner_id == Partner.id)
        .where(Contract.active)
    )


def _terms(contract: Contract, customer: Customer, partner: Partner | None) -> ContractTerms:
    return ContractTerms(
        contract_id=contract.id,
        customer_id=customer.id,
        customer_name=customer.name,
        tier=Tier(contract.tier),
        product_type=ProductType(contract.product_type),
        timezone=contract.timezone,
        country=contract.country,
        coverage_24x7=contract.coverage_24x7,
        partner_id=contract.partner_id,
        partner_tier=Tier(partner.connectsoft_tier) if partner else None,
        project=contract.project,
        overrides=contract.overrides,
        revision=contract.revision,
    )


async def get_contract_terms(*, session: AsyncSession, customer_id: str) -> ContractTerms | None:
    query = _contracts_with_parties().where(Contract.customer_id == customer_id)
    found = (await session.execute(query)).one_or_none()
    return _terms(*found) if found else None


async def update_contract(*, session: AsyncSession, customer_id: str, **changes: Any) -> ContractTerms:
    """Edit the customer's active contract, bump its revision, and commit.

    Open tickets are unaffected: they run on the terms pinned at intake.
    """
    unknown = changes.keys() - EDITABLE_TERMS
    if unknown:
        raise ValueError(f"not editable contract terms: {', '.join(sorted(unknown))}")
    current = await get_contract_terms(session=session, customer_id=customer_id)
    if current is None:
        raise ContractNotFound(customer_id)
    # Validate through the model so a bad tier or override never reaches the table.
    edited = ContractTerms.model_validate(current.model_dump() | changes)
    contract = await session.get_one(Contract, current.contract_id)
    for name, value in edited.model_dump(mode="json", include=set(EDITABLE_TERMS)).items():
        setattr(contract, name, value)
    contract.revision += 1
    contract.updated_at = utcnow()
    await session.commit()
    # Re-read: a new partner brings its own tier.
    updated = await get_contract_terms(session=session, customer_id=customer_id)
    if updated is None:
        raise ContractNotFound(customer_id)
    return updated


async def list_customers(*, session: AsyncSession) -> list[ContractTerms]:
    """Every customer with an active contract, as its contract terms, by customer id."""
    found = await session.execute(_contracts_with_parties().order_by(Customer.id))
    return [_terms(*row) for row in found]
