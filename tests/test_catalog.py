"""The demo catalog and contract terms, on every configured database backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.catalog import (
    CatalogRefused,
    ContractNotFound,
    CustomerDeactivated,
    CustomerStatus,
    DuplicateId,
    create_customer,
    customer_status,
    customer_terms,
    deactivate_customer,
    get_contract_terms,
    get_customer,
    list_customers,
    update_contract,
)
from store.db import Contract, Customer, Partner, alembic_config
from store.demo_catalog import DEMO_CATALOG, seed_demo_catalog
from store.partners import create_partner, list_partners
from workflows.enums import CoverageCalendar, ProductType, Tier
from workflows.terms import ContractTerms, ResponseTarget, TargetOverrides

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

    assert all(customer.active and customer.contract for customer in customers)
    terms = [customer.contract for customer in customers if customer.contract]
    summary = {t.customer_id: (t.tier, t.product_type, t.timezone, t.country, t.project) for t in terms}
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


# --- Onboarding, editing and deactivating (the admin endpoints and CLI use these) -------------

HOOLI: dict[str, Any] = {
    "customer_id": "hooli",
    "name": "Hooli",
    "tier": Tier.STANDARD,
    "product_type": ProductType.PLATFORM,
    "timezone": "America/Los_Angeles",
    "country": "US",
}


async def test_onboarded_customer_gets_revision_1_terms_that_intake_reads(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        created = await create_customer(
            session=session,
            **HOOLI,
            overrides={"response": {"1": {"minutes": 90, "calendar": "24x7"}}, "warn_ratio": 0.5},
        )
        terms = await get_contract_terms(session=session, customer_id="hooli")

    assert created.active and created.contract == terms
    assert terms is not None
    assert (terms.contract_id, terms.customer_name, terms.revision) == ("ctr-hooli", "Hooli", 1)
    assert (terms.tier, terms.timezone, terms.country) == (Tier.STANDARD, "America/Los_Angeles", "US")
    # An override without a label gets one people can read, like the policy's own targets.
    assert terms.overrides.response["1"] == ResponseTarget(
        minutes=90, calendar=CoverageCalendar.ALWAYS, label="90 min 24x7"
    )
    assert terms.overrides.warn_ratio == 0.5


async def test_a_partner_registered_later_can_deliver_a_new_customer(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        partner = await create_partner(
            session=session, partner_id="fabrikam", name="Fabrikam", connectsoft_tier="standard"
        )
        await create_customer(
            session=session,
            **(HOOLI | {"tier": Tier.PREMIUM, "product_type": "partner_delivered"}),
            partner_id="fabrikam",
        )
        terms = await get_contract_terms(session=session, customer_id="hooli")
        partners = await list_partners(session=session)

    assert partner.connectsoft_tier is Tier.STANDARD
    assert [p.id for p in partners] == ["fabrikam", "northwind"]
    assert terms is not None and (terms.partner_id, terms.partner_tier) == ("fabrikam", Tier.STANDARD)


async def test_duplicate_customer_and_partner_ids_are_refused_and_change_nothing(
    seeded: Sessionmaker,
) -> None:
    before = await catalog_snapshot(seeded)

    async with seeded() as session:
        with pytest.raises(DuplicateId) as customer:
            await create_customer(session=session, **(HOOLI | {"customer_id": "acme", "name": "Other Acme"}))
        with pytest.raises(DuplicateId) as partner:
            await create_partner(session=session, partner_id="northwind", name="N2", connectsoft_tier="basic")

    assert (customer.value.field, customer.value.rule, customer.value.status) == (
        "id",
        "duplicate_customer",
        409,
    )
    assert (partner.value.field, partner.value.rule) == ("id", "duplicate_partner")
    assert await catalog_snapshot(seeded) == before


BAD_CONTRACTS = [
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "contract.timezone", "unknown_timezone", id="timezone"),
    pytest.param({"country": "XX"}, "contract.country", "unknown_country", id="country"),
    pytest.param(
        {"product_type": "partner_delivered"}, "contract.partner_id", "partner_required", id="no-partner"
    ),
    pytest.param(
        {"product_type": "partner_delivered", "partner_id": "nobody"},
        "contract.partner_id",
        "unknown_partner",
        id="unknown-partner",
    ),
    pytest.param(
        {"partner_id": "northwind"}, "contract.partner_id", "partner_not_allowed", id="partner-on-platform"
    ),
    pytest.param(
        {"product_type": "bespoke"}, "contract.project", "project_required", id="bespoke-no-project"
    ),
    pytest.param(
        {"product_type": "bespoke", "project": "   "},
        "contract.project",
        "project_required",
        id="blank-project",
    ),
    pytest.param(
        {"coverage_24x7": True}, "contract.coverage_24x7", "coverage_24x7_premium_only", id="24x7-on-standard"
    ),
    pytest.param(
        {"overrides": {"response": {"5": {"minutes": 60, "calendar": "24x7"}}}},
        "contract.overrides.response.5",
        "unknown_severity",
        id="severity-5",
    ),
    pytest.param(
        {"overrides": {"handoff": {"critical": {"minutes": 60, "calendar": "24x7"}}}},
        "contract.overrides.handoff.critical",
        "unknown_severity",
        id="severity-name",
    ),
    pytest.param(
        {"overrides": {"resolution": {"1": {"minutes": 0, "calendar": "24x7"}}}},
        "contract.overrides.resolution.1.minutes",
        "invalid_target",
        id="zero-minutes",
    ),
    pytest.param({"tier": "gold"}, "contract.tier", "invalid_contract", id="tier"),
    pytest.param({"customer_id": "Hooli Inc"}, "id", "invalid_id", id="id"),
    pytest.param({"name": "  "}, "name", "invalid_name", id="blank-name"),
    pytest.param({"name": "Hoo\x00li"}, "name", "invalid_text", id="nul-in-name"),
]


@pytest.mark.parametrize(("changes", "field", "rule"), BAD_CONTRACTS)
async def test_bad_onboarding_names_the_field_and_rule_and_writes_nothing(
    seeded: Sessionmaker, changes: dict[str, Any], field: str, rule: str
) -> None:
    before = await catalog_snapshot(seeded)

    async with seeded() as session:
        with pytest.raises(CatalogRefused) as refused:
            await create_customer(session=session, **(HOOLI | changes))

    assert (refused.value.field, refused.value.rule, refused.value.status) == (field, rule, 422)
    assert refused.value.detail.startswith(f"{field}: ")
    assert await catalog_snapshot(seeded) == before


async def test_contract_edit_is_checked_like_onboarding(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        with pytest.raises(CatalogRefused) as refused:
            await update_contract(session=session, customer_id="globex", coverage_24x7=True)
        with pytest.raises(CatalogRefused) as moved:
            await update_contract(session=session, customer_id="contoso", product_type=ProductType.PLATFORM)
        # Both changed together make a consistent contract.
        edited = await update_contract(
            session=session, customer_id="contoso", product_type=ProductType.PLATFORM, partner_id=None
        )

    # Unprefixed: the body of PUT /customers/{id}/contract is the contract itself.
    assert (refused.value.field, refused.value.rule) == ("coverage_24x7", "coverage_24x7_premium_only")
    assert (moved.value.field, moved.value.rule) == ("partner_id", "partner_not_allowed")
    assert (edited.revision, edited.partner_id, edited.partner_tier) == (2, None, None)


async def test_deactivated_customer_files_nothing_but_keeps_its_contract(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        pinned = await get_contract_terms(session=session, customer_id="globex")
        first = await deactivate_customer(session=session, customer_id="globex")
        again = await deactivate_customer(session=session, customer_id="globex")
        unknown = await deactivate_customer(session=session, customer_id="hooli")
        terms = await get_contract_terms(session=session, customer_id="globex")
        statuses = [
            await customer_status(session=session, customer_id=customer_id)
            for customer_id in ("globex", "acme", "hooli")
        ]
        listed = [c.id for c in await list_customers(session=session)]
        listed_all = {c.id: c.active for c in await list_customers(session=session, include_inactive=True)}
        with pytest.raises(CustomerDeactivated) as edit:
            await update_contract(session=session, customer_id="globex", tier=Tier.PREMIUM)
        record = await get_customer(session=session, customer_id="globex")
        for_intake = [
            await customer_terms(session=session, customer_id=customer_id)
            for customer_id in ("globex", "hooli")
        ]

    assert first is not None and again == first and not first.active
    assert first.contract == pinned
    assert unknown is None
    assert terms is None
    assert statuses == [CustomerStatus.DEACTIVATED, CustomerStatus.ACTIVE, CustomerStatus.UNKNOWN]
    assert "globex" not in listed and len(listed) == len(DEMO_CUSTOMERS) - 1
    assert listed_all["globex"] is False and listed_all["acme"] is True
    assert (edit.value.rule, edit.value.status) == ("customer_deactivated", 409)
    assert record is not None and record.contract == pinned
    assert for_intake == [(CustomerStatus.DEACTIVATED, pinned), (CustomerStatus.UNKNOWN, None)]


async def test_migration_0002_keeps_earlier_rows_active_and_unbreached(db_engine: AsyncEngine) -> None:
    def move_to(connection: Connection, revision: str) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    received = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    async with db_engine.begin() as connection:
        await connection.run_sync(move_to, "0001")
        await connection.execute(text("INSERT INTO customers (id, name) VALUES ('old', 'Old Co')"))
        await connection.execute(
            text(
                "INSERT INTO tickets (ticket_id, workflow_id, customer_id, contract_id, policy_version, "
                "title, product, product_type, tier, severity, status, level, owning_line, received_at, "
                "sla_breached, updated_at) VALUES ('t-old', 'ticket-t-old', 'old', 'ctr-old', '1', 'Old', "
                "'identity', 'platform', 'basic', 3, 'open', 1, 'connectsoft', :at, true, :at)"
            ),
            {"at": received},
        )
        await connection.run_sync(move_to, "head")

    async with db_engine.connect() as connection:
        active = (await connection.execute(text("SELECT active FROM customers"))).scalar_one()
        flags = (
            await connection.execute(text("SELECT sla_breached, partner_sla_breached FROM tickets"))
        ).one()
    assert bool(active) is True
    assert (bool(flags[0]), bool(flags[1])) == (True, False)


async def test_ids_no_customer_can_have_are_unknown_without_reaching_the_database(
    seeded: Sessionmaker,
) -> None:
    # PostgreSQL refuses NUL in text outright: these must never become a query.
    odd = ["acme\x00", "ACME", "acme\n", "", "a" * 101]
    async with seeded() as session:
        found = [await get_customer(session=session, customer_id=customer_id) for customer_id in odd]
        statuses = {await customer_status(session=session, customer_id=customer_id) for customer_id in odd}
        deactivated = [
            await deactivate_customer(session=session, customer_id=customer_id) for customer_id in odd
        ]
        with pytest.raises(ContractNotFound):
            await update_contract(session=session, customer_id="acme\x00", tier=Tier.BASIC)
        with pytest.raises(CatalogRefused) as partner:
            await create_customer(
                session=session, **(HOOLI | {"product_type": "partner_delivered"}), partner_id="north\x00wind"
            )

    assert found == deactivated == [None] * len(odd)
    assert statuses == {CustomerStatus.UNKNOWN}
    assert (partner.value.field, partner.value.rule) == ("contract.partner_id", "unknown_partner")
