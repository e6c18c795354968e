"""The demo catalog `make up` seeds (DESIGN.md §8): customers, the partner, contacts and
ConnectSoft's support teams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import ContactRole, contract_columns
from store.db import Contact, Contract, Customer, Partner, SupportTeam, dialect_insert
from workflows.enums import Audience, ProductType, Tier
from workflows.terms import ContractTerms


@dataclass(frozen=True)
class PartnerSeed:
    id: str
    name: str
    connectsoft_tier: Tier
    coverage_24x7: bool = False


@dataclass(frozen=True)
class ContactSeed:
    """A demo contact of one customer or one partner (store/contacts.py)."""

    name: str
    email: str
    customer_id: str | None = None
    partner_id: str | None = None
    role: ContactRole = ContactRole.NOTIFY
    timezone: str | None = None


@dataclass(frozen=True)
class SupportTeamSeed:
    audience: Audience
    name: str
    email: str
    chat_channel: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class DemoCatalog:
    partners: tuple[PartnerSeed, ...]
    contracts: tuple[ContractTerms, ...]
    contacts: tuple[ContactSeed, ...] = ()
    support_teams: tuple[SupportTeamSeed, ...] = ()


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
            # England's own bank holidays (Easter Monday, August) too (DESIGN.md §3).
            subdivision="GB-ENG",
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
    contacts=(
        ContactSeed(
            customer_id="acme", name="Acme Operations", email="ops@acme.example", timezone="Europe/Berlin"
        ),
        ContactSeed(customer_id="globex", name="Globex IT", email="it@globex.example"),
        ContactSeed(customer_id="initech", name="Initech Help Desk", email="helpdesk@initech.example"),
        ContactSeed(customer_id="umbrella", name="Umbrella Portal Team", email="portal@umbrella.example"),
        ContactSeed(customer_id="contoso", name="Contoso Operations", email="ops@contoso.example"),
        ContactSeed(partner_id="northwind", name="Northwind Support", email="support@northwind.example"),
        ContactSeed(
            partner_id="northwind",
            name="Northwind On-call",
            email="oncall@northwind.example",
            role=ContactRole.ON_CALL,
        ),
    ),
    support_teams=(
        SupportTeamSeed(Audience.SUPPORT_L1, "Support L1", "l1@connectsoft.example", "#support-l1"),
        SupportTeamSeed(Audience.SUPPORT_L2, "Support L2", "l2@connectsoft.example", "#support-l2"),
        SupportTeamSeed(
            Audience.ENGINEERING_L3, "Engineering L3", "l3@connectsoft.example", "#engineering-l3"
        ),
        SupportTeamSeed(Audience.LEADERSHIP_L4, "Leadership L4", "l4@connectsoft.example", "#leadership-l4"),
        SupportTeamSeed(
            Audience.SUPPORT_LEAD, "Support lead", "support-lead@connectsoft.example", "#support-lead"
        ),
        SupportTeamSeed(Audience.ON_CALL, "On-call", "oncall@connectsoft.example", "#on-call"),
    ),
)


async def seed_demo_catalog(*, session: AsyncSession) -> None:
    """Insert the demo catalog where absent, then commit. Existing rows are never changed.

    Contacts are seeded only for a customer or partner that has none, so an admin's edit of
    them stands (one emptied altogether gets the demo ones back).
    """
    for partner in DEMO_CATALOG.partners:
        await session.execute(
            dialect_insert(session, Partner)
            .values(
                id=partner.id,
                name=partner.name,
                connectsoft_tier=partner.connectsoft_tier,
                coverage_24x7=partner.coverage_24x7,
            )
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
            dialect_insert(session, Contract).values(contract_columns(terms)).on_conflict_do_nothing()
        )
    owners = {
        (customer_id, partner_id)
        for customer_id, partner_id in await session.execute(
            select(Contact.customer_id, Contact.partner_id).distinct()
        )
    }
    for contact in DEMO_CATALOG.contacts:
        if (contact.customer_id, contact.partner_id) not in owners:
            await session.execute(
                dialect_insert(session, Contact)
                .values(
                    customer_id=contact.customer_id,
                    partner_id=contact.partner_id,
                    role=contact.role.value,
                    name=contact.name,
                    email=contact.email,
                    timezone=contact.timezone,
                )
                .on_conflict_do_nothing()
            )
    for team in DEMO_CATALOG.support_teams:
        await session.execute(
            dialect_insert(session, SupportTeam)
            .values(
                audience=team.audience.value,
                name=team.name,
                email=team.email,
                chat_channel=team.chat_channel,
                timezone=team.timezone,
            )
            .on_conflict_do_nothing()
        )
    await session.commit()
