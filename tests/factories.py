"""Builders for test tickets: the demo catalog's contracts, pinned the way intake pins them."""

from __future__ import annotations

import uuid
from datetime import datetime

from workflows.entitlement import build_entitlement
from workflows.models import (
    Category,
    Channel,
    ContractTerms,
    Product,
    ProductType,
    Severity,
    TicketOpened,
    Tier,
)

DEMO_TERMS: dict[str, ContractTerms] = {
    "acme": ContractTerms(
        contract_id="ctr-acme",
        customer_id="acme",
        customer_name="Acme",
        tier=Tier.PREMIUM,
        product_type=ProductType.PLATFORM,
        timezone="Europe/Berlin",
        country="DE",
    ),
    "globex": ContractTerms(
        contract_id="ctr-globex",
        customer_id="globex",
        customer_name="Globex",
        tier=Tier.STANDARD,
        product_type=ProductType.PLATFORM,
        timezone="America/New_York",
        country="US",
    ),
    "initech": ContractTerms(
        contract_id="ctr-initech",
        customer_id="initech",
        customer_name="Initech",
        tier=Tier.BASIC,
        product_type=ProductType.PLATFORM,
        timezone="UTC",
    ),
    "umbrella": ContractTerms(
        contract_id="ctr-umbrella",
        customer_id="umbrella",
        customer_name="Umbrella",
        tier=Tier.STANDARD,
        product_type=ProductType.BESPOKE,
        timezone="Europe/London",
        country="GB",
        project="umbrella-portal",
    ),
    "contoso": ContractTerms(
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
}

PRODUCT_FOR = {
    ProductType.PLATFORM: Product.IDENTITY,
    ProductType.BESPOKE: Product.BESPOKE,
    ProductType.PARTNER_DELIVERED: Product.PARTNER_SOLUTION,
}


def opened_ticket(
    customer_id: str,
    severity: int,
    received_at: datetime,
    *,
    terms: ContractTerms | None = None,
    channel: Channel = Channel.EMAIL,
    category: Category = Category.INCIDENT,
    title: str = "Login down",
) -> TicketOpened:
    terms = terms or DEMO_TERMS[customer_id]
    return TicketOpened(
        ticket_id=uuid.uuid4().hex[:12],
        customer_id=customer_id,
        title=title,
        description="Every sign-in returns HTTP 500.",
        severity=Severity(severity),
        product=PRODUCT_FOR[terms.product_type],
        channel=channel,
        category=category,
        received_at=received_at,
        entitlement=build_entitlement(terms, received_at=received_at),
    )
