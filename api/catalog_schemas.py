"""Request and response bodies of the catalog admin endpoints: customers, contracts,
partners and API keys (Create / Update / Public naming, as in api/schemas.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.errors import ApiError
from store.catalog import (
    CATALOG_ID,
    MAX_TARGET_MINUTES,
    CatalogCustomer,
    CatalogRefused,
)
from store.keys import ApiKeyPublic
from store.partners import CatalogPartner
from workflows.enums import CoverageCalendar, ProductType, Tier
from workflows.terms import ContractTerms, TargetOverrides
from workflows.text import VisibleText

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ContractPublic",
    "ContractUpdate",
    "CustomerCreate",
    "CustomerPublic",
    "PartnerCreate",
    "PartnerPublic",
    "refusal",
]

# 1-100 lowercase letters, digits, '.', '_' or '-': ids appear in URLs and ticket ids.
CatalogId = Annotated[str, StringConstraints(pattern=CATALOG_ID.pattern)]


class _Body(BaseModel):
    # A misspelled field is refused, never silently dropped.
    model_config = ConfigDict(extra="forbid")


class TargetUpdate(_Body):
    minutes: int = Field(ge=1, le=MAX_TARGET_MINUTES, examples=[30])
    calendar: CoverageCalendar
    binding: bool = True
    label: VisibleText = Field(
        default="", max_length=100, description="Shown to people; made from minutes and calendar if empty"
    )


class OverridesUpdate(_Body):
    """Targets that replace the policy's, per severity ("1".."4")."""

    response: dict[str, TargetUpdate] = Field(
        default_factory=dict, examples=[{"1": {"minutes": 30, "calendar": "24x7"}}]
    )
    handoff: dict[str, TargetUpdate] = Field(default_factory=dict)
    resolution: dict[str, TargetUpdate] = Field(default_factory=dict)
    periodic_update: dict[str, TargetUpdate] = Field(default_factory=dict)
    warn_ratio: float | None = Field(default=None, gt=0, lt=1, examples=[0.75])


class ContractUpdate(_Body):
    """A contract's terms. PUT replaces them all; every change bumps the revision."""

    tier: Tier
    product_type: ProductType
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    country: str | None = Field(
        default=None, min_length=2, max_length=3, description="ISO code for public holidays", examples=["DE"]
    )
    subdivision: str | None = Field(
        default=None,
        min_length=4,
        max_length=6,
        description="ISO 3166-2 code of the country's subdivision, for its regional holidays "
        "(without one, only nationwide holidays apply)",
        examples=["GB-ENG"],
    )
    coverage_24x7: bool = Field(default=False, description="The Premium 24/7 option")
    partner_id: CatalogId | None = Field(default=None, description="partner_delivered only")
    project: VisibleText | None = Field(default=None, max_length=200, description="bespoke only, required")
    overrides: OverridesUpdate = Field(default_factory=OverridesUpdate)


class ContractPublic(BaseModel):
    contract_id: str
    customer_id: str
    tier: Tier
    product_type: ProductType
    timezone: str
    country: str | None
    subdivision: str | None
    coverage_24x7: bool
    partner_id: str | None
    partner_tier: Tier | None = Field(description="The partner's own ConnectSoft tier")
    partner_coverage_24x7: bool = Field(description="The partner's own 24/7 option with ConnectSoft")
    project: str | None
    overrides: TargetOverrides
    revision: int

    @classmethod
    def of(cls, terms: ContractTerms) -> ContractPublic:
        return cls.model_validate(terms.model_dump())


class CustomerCreate(_Body):
    id: CatalogId = Field(examples=["hooli"])
    name: VisibleText = Field(min_length=1, max_length=200, examples=["Hooli"])
    contract: ContractUpdate


class CustomerPublic(BaseModel):
    id: str
    name: str
    active: bool = Field(description="False once deactivated: no new tickets")
    contract: ContractPublic | None

    @classmethod
    def of(cls, customer: CatalogCustomer) -> CustomerPublic:
        contract = ContractPublic.of(customer.contract) if customer.contract else None
        return cls(id=customer.id, name=customer.name, active=customer.active, contract=contract)


class PartnerCreate(_Body):
    id: CatalogId = Field(examples=["fabrikam"])
    name: VisibleText = Field(min_length=1, max_length=200, examples=["Fabrikam"])
    connectsoft_tier: Tier = Field(description="The partner's own tier with ConnectSoft")
    coverage_24x7: bool = Field(
        default=False, description="The partner's own 24/7 option with ConnectSoft (Premium only)"
    )


class PartnerPublic(BaseModel):
    """The partner's agreement with ConnectSoft: what ConnectSoft owes on its customers'
    tickets follows it (DESIGN.md §6)."""

    id: str
    name: str
    connectsoft_tier: Tier
    coverage_24x7: bool

    @classmethod
    def of(cls, partner: CatalogPartner) -> PartnerPublic:
        return cls.model_validate(partner.model_dump())


class ApiKeyCreate(_Body):
    name: VisibleText = Field(min_length=1, max_length=100, examples=["anna"])
    role: Literal["admin", "support", "partner", "customer"]
    level: int | None = Field(default=None, ge=1, le=4, description="support keys only, required")
    partner_id: CatalogId | None = Field(default=None, description="partner keys only, required")
    customer_id: CatalogId | None = Field(default=None, description="customer keys only, required")


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself. Shown this once; store it now.")


def refusal(err: CatalogRefused) -> ApiError:
    """The catalog's refusal as an API error: `<field>: <what to do>`, with the rule."""
    return ApiError(err.status, err.detail, rule=err.rule)
