"""The demo catalog and contract terms, on every configured database backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.catalog import (
    DEMO_CATALOG,
    ContractNotFound,
    get_contract_terms,
    list_customers,
    seed_demo_catalog,
    update_contract,
)
from activities.db import Contract, Customer, Partner
from workflows.models import (
    ContractTerms,
    CoverageCalendar,
    ProductType,
    ResponseTarget,
    TargetOverrides,
    Tier,
)

Sessionmaker = async_sessionmaker[AsyncSession]

DEMO_CUSTOMERS = ["acme", "contoso", "globex", "initech", "umbrella"]


@pytest.fixture
async def seeded(sessionmaker: Sessionmaker) -> Sessionmaker:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    return sessionmaker


async def catalog_snapshot(sessionmaker: Sessionmaker) -> list[tuple[object, ...]]:
    async with sessionmaker() as session:
        rows: list[tuple[object, ...]] = []
        for entity in (Customer, Partner, Contract):
            for record in await session.scalars(select(entity)):
                rows.append(tuple(getattr(record, c.key) for c in entity.__table__.columns))
        return sorted(rows, key=repr)


async def test_seeding_twice_changes_nothing(seeded: Sessionmaker) -> None:
    before = await catalog_snapshot(seeded)

    async with seeded() as session:
        await seed_demo_catalog(session=session)

    assert await catalog_snapshot(seeded) == before
    assert len(before) == len(DEMO_CUSTOMERS) * 2 + 1


async def test_seeding_again_keeps_an_edited_contract(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        edited = await update_contract(session=session, customer_id="globex", tier=Tier.PREMIUM)

    async with seeded() as session:
        await seed_demo_catalog(session=session)
        assert await get_contract_terms(session=session, customer_id="globex") == edited
    assert edited.tier is Tier.PREMIUM and edited.revision == 2


@pytest.mark.parametrize("demo_terms", DEMO_CATALOG.contracts, ids=lambda terms: terms.customer_id)
async def test_demo_customer_contract_terms_round_trip(
    seeded: Sessionmaker, demo_terms: ContractTerms
) -> None:
    async with seeded() as session:
        assert await get_contract_terms(session=session, customer_id=demo_terms.customer_id) == demo_terms


async def test_contoso_is_delivered_by_premium_partner_northwind(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        terms = await get_contract_terms(session=session, customer_id="contoso")

    assert terms is not None
    assert terms.product_type is ProductType.PARTNER_DELIVERED
    assert (terms.partner_id, terms.partner_tier) == ("northwind", Tier.PREMIUM)
    assert terms.tier is Tier.PREMIUM


async def test_demo_catalog_matches_the_design_table(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        customers = await list_customers(session=session)

    summary = {t.customer_id: (t.tier, t.product_type, t.timezone, t.country, t.project) for t in customers}
    assert list(summary) == DEMO_CUSTOMERS
    assert summary["acme"] == (Tier.PREMIUM, ProductType.PLATFORM, "Europe/Berlin", "DE", None)
    assert summary["globex"] == (Tier.STANDARD, ProductType.PLATFORM, "America/New_York", "US", None)
    assert summary["initech"] == (Tier.BASIC, ProductType.PLATFORM, "UTC", None, None)
    assert summary["umbrella"][:2] == (Tier.STANDARD, ProductType.BESPOKE)
    assert summary["umbrella"][4] == "umbrella-portal"
    assert summary["contoso"][:2] == (Tier.PREMIUM, ProductType.PARTNER_DELIVERED)


async def test_unknown_customer_has_no_contract_terms(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        assert await get_contract_terms(session=session, customer_id="hooli") is None
        with pytest.raises(ContractNotFound):
            await update_contract(session=session, customer_id="hooli", tier=Tier.BASIC)


async def test_update_contract_bumps_revision_and_keeps_earlier_snapshots(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        pinned_at_intake = await get_contract_terms(session=session, customer_id="acme")
        before = await session.scalar(select(Contract.updated_at).where(Contract.id == "ctr-acme"))
    overrides = TargetOverrides(
        response={"1": ResponseTarget(minutes=30, calendar=CoverageCalendar.ALWAYS, label="30 min")}
    )

    async with seeded() as session:
        edited = await update_contract(
            session=session, customer_id="acme", coverage_24x7=True, overrides=overrides
        )
        edited_again = await update_contract(session=session, customer_id="acme", country=None)

    assert pinned_at_intake is not None and pinned_at_intake.revision == 1
    assert not pinned_at_intake.coverage_24x7 and pinned_at_intake.overrides == TargetOverrides()
    assert (edited.revision, edited.coverage_24x7, edited.overrides) == (2, True, overrides)
    assert (edited_again.revision, edited_again.country, edited_again.overrides) == (3, None, overrides)
    async with seeded() as session:
        assert await get_contract_terms(session=session, customer_id="acme") == edited_again
        after = await session.scalar(select(Contract.updated_at).where(Contract.id == "ctr-acme"))
    assert before is not None and after is not None
    assert before < after <= datetime.now(UTC)


async def test_update_contract_refuses_bad_terms_and_writes_nothing(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        with pytest.raises(ValueError, match="customer_name"):
            await update_contract(session=session, customer_id="acme", customer_name="Evil")
        with pytest.raises(ValueError, match="tier"):
            await update_contract(session=session, customer_id="acme", tier="gold")

    async with seeded() as session:
        terms = await get_contract_terms(session=session, customer_id="acme")
    assert terms is not None and terms.revision == 1 and terms.tier is Tier.PREMIUM


async def test_a_customer_has_at_most_one_active_contract(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        session.add(
            Contract(
                id="ctr-acme-2026",
                customer_id="acme",
                tier=Tier.STANDARD,
                product_type=ProductType.PLATFORM,
                timezone="UTC",
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()

    async with seeded() as session:
        await session.execute(update(Contract).where(Contract.id == "ctr-acme").values(active=False))
        session.add(
            Contract(
                id="ctr-acme-2026",
                customer_id="acme",
                tier=Tier.STANDARD,
                product_type=ProductType.PLATFORM,
                timezone="UTC",
            )
        )
        await session.commit()
        terms = await get_contract_terms(session=session, customer_id="acme")
        contracts = await session.scalar(select(func.count()).select_from(Contract))
    assert terms is not None and (terms.contract_id, terms.tier) == ("ctr-acme-2026", Tier.STANDARD)
    assert contracts == len(DEMO_CUSTOMERS) + 1
