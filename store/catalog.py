"""The customer catalog: customers, partners and their contracts.

Intake reads a customer's ContractTerms from here and pins them into the ticket's
entitlement, so editing a contract later never changes an open ticket. The admin endpoints
and the `escalator customers|partners` commands onboard, edit and deactivate through the
service functions below; each checks its input and refuses with a `CatalogRefused` that
names the field and the rule.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Contract, Customer, Partner, utcnow
from workflows.calendars import describe_duration
from workflows.entitlement import IntakeRefused, check_subdivision, check_timezone, public_holidays
from workflows.enums import CoverageCalendar, ProductType, Severity, Tier
from workflows.terms import ContractTerms
from workflows.text import check_clean_text


class ContractNotFound(LookupError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no active contract")
        self.customer_id = customer_id


class CatalogRefused(ValueError):
    """Catalog input refused: `field` says what to fix, `rule` names the rule it broke.

    Nothing was written. `status` is the HTTP status the API answers with.
    """

    status = 422

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.message}"


class DuplicateId(CatalogRefused):
    status = 409


class CustomerDeactivated(CatalogRefused):
    status = 409


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    UNKNOWN = "unknown"


class ContactRole(StrEnum):
    """What a contact is for: updates on the owner's tickets, or a partner's on-call pages."""

    NOTIFY = "notify"
    ON_CALL = "on_call"


class CatalogCustomer(BaseModel):
    """A customer and its active contract (kept, for the record, when deactivated)."""

    id: str
    name: str
    active: bool
    contract: ContractTerms | None


# Contract columns a catalog edit may change; ids and names are not contract terms.
EDITABLE_TERMS: Final = frozenset(
    {
        "tier",
        "product_type",
        "timezone",
        "country",
        "subdivision",
        "coverage_24x7",
        "partner_id",
        "project",
        "overrides",
    }
)


def contract_columns(terms: ContractTerms) -> dict[str, Any]:
    dumped = terms.model_dump(mode="json", include=set(EDITABLE_TERMS))
    return dumped | {"id": terms.contract_id, "customer_id": terms.customer_id}


# Customer and partner ids appear in URLs, ticket ids and search attributes: keep them plain.
CATALOG_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
CATALOG_ID_RULE = "1-100 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
COUNTRY_CODE = re.compile(r"^[A-Z]{2,3}$")
SEVERITY_KEYS: Final = frozenset(str(int(severity)) for severity in Severity)
OVERRIDE_KINDS: Final = ("response", "handoff", "resolution", "periodic_update")
# Longer targets would put deadlines past the calendars' reach; nobody promises a year.
MAX_TARGET_MINUTES: Final = 365 * 24 * 60


def _contracts_with_parties(*, include_inactive: bool = False) -> Select[Contract, Customer, Partner]:
    # Partner is None for contracts without one (outer join).
    query = (
        select(Contract, Customer, Partner)
        .join(Customer, Contract.customer_id == Customer.id)
        .outerjoin(Partner, Contract.partner_id == Partner.id)
        .where(Contract.active)
    )
    return query if include_inactive else query.where(Customer.active)


def _terms(contract: Contract, customer: Customer, partner: Partner | None) -> ContractTerms:
    return ContractTerms(
        contract_id=contract.id,
        customer_id=customer.id,
        customer_name=customer.name,
        tier=Tier(contract.tier),
        product_type=ProductType(contract.product_type),
        timezone=contract.timezone,
        country=contract.country,
        subdivision=contract.subdivision,
        coverage_24x7=contract.coverage_24x7,
        partner_id=contract.partner_id,
        partner_tier=Tier(partner.connectsoft_tier) if partner else None,
        partner_coverage_24x7=partner.coverage_24x7 if partner else False,
        project=contract.project,
        overrides=contract.overrides,
        revision=contract.revision,
    )


def _plausible(customer_id: str) -> bool:
    # An id no customer can have is unknown without asking the database (PostgreSQL refuses NUL).
    return CATALOG_ID.fullmatch(customer_id) is not None


async def _find_terms(
    session: AsyncSession, customer_id: str, *, include_inactive: bool
) -> ContractTerms | None:
    if not _plausible(customer_id):
        return None
    query = _contracts_with_parties(include_inactive=include_inactive).where(
        Contract.customer_id == customer_id
    )
    found = (await session.execute(query)).one_or_none()
    return _terms(*found) if found else None


async def get_contract_terms(*, session: AsyncSession, customer_id: str) -> ContractTerms | None:
    """The terms a new ticket of `customer_id` runs under; None if unknown or deactivated.

    `customer_status` tells the two apart.
    """
    return await _find_terms(session, customer_id, include_inactive=False)


async def customer_status(*, session: AsyncSession, customer_id: str) -> CustomerStatus:
    if not _plausible(customer_id):
        return CustomerStatus.UNKNOWN
    active = await session.scalar(select(Customer.active).where(Customer.id == customer_id))
    if active is None:
        return CustomerStatus.UNKNOWN
    return CustomerStatus.ACTIVE if active else CustomerStatus.DEACTIVATED


async def customer_terms(
    *, session: AsyncSession, customer_id: str
) -> tuple[CustomerStatus, ContractTerms | None]:
    """The customer's status and its active contract's terms, even when deactivated.

    For intake: check reach on the terms first (so a foreign customer stays unknown), then
    refuse a DEACTIVATED one with `deactivated_customer_message`.
    """
    status = await customer_status(session=session, customer_id=customer_id)
    if status == CustomerStatus.UNKNOWN:
        return status, None
    return status, await _find_terms(session, customer_id, include_inactive=True)


class TermsByRevision:
    """Intake's `customer_terms` with the built terms kept by contract id and revision: each
    intake asks only the customer's status and its contract's revision (one indexed row), and
    reads and builds the terms again only for a revision it has not seen. Every contract
    change bumps the revision (`update_contract`), so a changed contract is always read anew;
    partners and customers' names are never edited. One per API process (its app's state):
    revisions are only comparable within one database. At most `max_entries`, least recently
    used forgotten first."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._terms: OrderedDict[tuple[str, int], ContractTerms] = OrderedDict()
        # Full reads of the terms (a revision not seen before): what a test counts.
        self.reads = 0

    async def customer_terms(
        self, *, session: AsyncSession, customer_id: str
    ) -> tuple[CustomerStatus, ContractTerms | None]:
        """As `customer_terms`, with the terms of a revision seen before from memory."""
        if not _plausible(customer_id):
            return CustomerStatus.UNKNOWN, None
        found = (
            await session.execute(
                select(Customer.active, Contract.id, Contract.revision)
                .outerjoin(Contract, (Contract.customer_id == Customer.id) & Contract.active)
                .where(Customer.id == customer_id)
            )
        ).first()
        if found is None:
            return CustomerStatus.UNKNOWN, None
        active, contract_id, revision = found
        status = CustomerStatus.ACTIVE if active else CustomerStatus.DEACTIVATED
        if contract_id is None:
            return status, None
        terms = self._terms.get((contract_id, revision))
        if terms is None:
            self.reads += 1
            terms = await _find_terms(session, customer_id, include_inactive=True)
            if terms is None:
                return status, None
            self._terms[(terms.contract_id, terms.revision)] = terms
            while len(self._terms) > self.max_entries:
                self._terms.popitem(last=False)
        else:
            self._terms.move_to_end((contract_id, revision))
        return status, terms


def deactivated_customer_message(customer_id: str) -> str:
    return (
        f"Customer {customer_id!r} is deactivated and files no new tickets; "
        "ask ConnectSoft to renew the contract."
    )


# --- Checks -----------------------------------------------------------------------------------


def check_id(field: str, value: str) -> None:
    if not CATALOG_ID.fullmatch(value):
        raise CatalogRefused(field, "invalid_id", f"{value!r} is not a valid id: use {CATALOG_ID_RULE}.")


def check_name(field: str, value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 200:
        raise CatalogRefused(field, "invalid_name", "a name has 1-200 characters.")
    try:
        check_clean_text(name)
    except ValueError as err:
        raise CatalogRefused(field, "invalid_text", f"{err}.") from None
    return name


def _validated_terms(candidate: dict[str, Any]) -> ContractTerms:
    try:
        return ContractTerms.model_validate(candidate)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "contract"
        raise CatalogRefused(field, "invalid_contract", f"{first['msg']}.") from None


def _labelled(terms: ContractTerms) -> ContractTerms:
    """Give every override a label people can read, as the policy's own targets have."""
    overrides = terms.overrides.model_copy(deep=True)
    for kind in OVERRIDE_KINDS:
        for target in getattr(overrides, kind).values():
            if not target.label:
                label = describe_duration(target.minutes, target.calendar)
                if target.calendar != CoverageCalendar.BUSINESS:
                    label = f"{label} {target.calendar}"
                target.label = label
    return terms.model_copy(update={"overrides": overrides})


async def _check_terms(session: AsyncSession, terms: ContractTerms) -> None:
    """Refuse contract terms intake could not honour. Fields are named as in a contract body."""
    try:
        check_timezone(terms.timezone)
    except IntakeRefused as err:
        raise CatalogRefused("timezone", err.rule, err.message) from None
    if terms.country is not None:
        hint = "Use an ISO 3166 code such as 'DE', or leave it out."
        # Checked before the lookup: the holidays package resolves codes as attribute names.
        if not COUNTRY_CODE.fullmatch(terms.country):
            raise CatalogRefused(
                "country", "unknown_country", f"No public-holiday calendar for {terms.country!r}. {hint}"
            )
        try:
            year = datetime.now(UTC).year
            public_holidays(terms.country, range(year, year + 1))
        except IntakeRefused as err:
            raise CatalogRefused("country", err.rule, f"{err.message} {hint}") from None
    if terms.subdivision is not None:
        try:
            check_subdivision(terms.country, terms.subdivision)
        except IntakeRefused as err:
            raise CatalogRefused("subdivision", err.rule, err.message) from None
    if terms.coverage_24x7 and terms.tier != Tier.PREMIUM:
        raise CatalogRefused(
            "coverage_24x7",
            "coverage_24x7_premium_only",
            f"the 24/7 option is for Premium contracts; this one is {terms.tier.value}.",
        )
    if terms.product_type == ProductType.PARTNER_DELIVERED:
        if terms.partner_id is None:
            raise CatalogRefused(
                "partner_id", "partner_required", "a partner-delivered contract names its partner."
            )
        if not CATALOG_ID.fullmatch(terms.partner_id) or await session.get(Partner, terms.partner_id) is None:
            raise CatalogRefused(
                "partner_id",
                "unknown_partner",
                f"no partner {terms.partner_id!r}; register it first (POST /partners).",
            )
    elif terms.partner_id is not None:
        raise CatalogRefused(
            "partner_id",
            "partner_not_allowed",
            f"only a partner_delivered contract has a partner; this one is {terms.product_type.value}.",
        )
    if terms.product_type == ProductType.BESPOKE and not (terms.project or "").strip():
        raise CatalogRefused(
            "project", "project_required", "a bespoke (Factory-built) contract names its project."
        )
    for kind in OVERRIDE_KINDS:
        for key, target in getattr(terms.overrides, kind).items():
            field = f"overrides.{kind}.{key}"
            if key not in SEVERITY_KEYS:
                raise CatalogRefused(
                    field, "unknown_severity", 'overrides are keyed by severity, "1" to "4".'
                )
            if not 1 <= target.minutes <= MAX_TARGET_MINUTES:
                raise CatalogRefused(
                    f"{field}.minutes",
                    "invalid_target",
                    f"a target is 1 to {MAX_TARGET_MINUTES} minutes (one year).",
                )


async def _checked_new_terms(session: AsyncSession, candidate: dict[str, Any]) -> ContractTerms:
    terms = _labelled(_validated_terms(candidate))
    await _check_terms(session, terms)
    return terms


# --- Customers and contracts ------------------------------------------------------------------


async def create_customer(
    *,
    session: AsyncSession,
    customer_id: str,
    name: str,
    tier: Tier | str,
    product_type: ProductType | str,
    timezone: str = "UTC",
    country: str | None = None,
    subdivision: str | None = None,
    coverage_24x7: bool = False,
    partner_id: str | None = None,
    project: str | None = None,
    overrides: Any = None,
) -> CatalogCustomer:
    """Onboard a customer with its first contract (revision 1), and commit."""
    check_id("id", customer_id)
    name = check_name("name", name)
    if await session.get(Customer, customer_id) is not None:
        raise _duplicate_customer(customer_id)
    try:
        terms = await _checked_new_terms(
            session,
            {
                "contract_id": f"ctr-{customer_id}",
                "customer_id": customer_id,
                "customer_name": name,
                "tier": tier,
                "product_type": product_type,
                "timezone": timezone,
                "country": country,
                "subdivision": subdivision,
                "coverage_24x7": coverage_24x7,
                "partner_id": partner_id,
                "project": project,
                "overrides": overrides or {},
            },
        )
    except CatalogRefused as err:
        # Named as in the body of POST /customers, where the terms sit under `contract`.
        raise type(err)(f"contract.{err.field}", err.rule, err.message) from None
    try:
        session.add(Customer(id=customer_id, name=name, active=True))
        # The customer row first: the contract refers to it.
        await session.flush()
        session.add(Contract(**contract_columns(terms), active=True, revision=1, updated_at=utcnow()))
        await session.commit()
    except IntegrityError:
        # Another request onboarded the same id between the check and the commit.
        await session.rollback()
        raise _duplicate_customer(customer_id) from None
    found = await get_customer(session=session, customer_id=customer_id)
    assert found is not None
    return found


def _duplicate_customer(customer_id: str) -> DuplicateId:
    return DuplicateId(
        "id",
        "duplicate_customer",
        f"customer {customer_id!r} already exists; edit its contract with PUT /customers/"
        f"{customer_id}/contract.",
    )


async def get_customer(*, session: AsyncSession, customer_id: str) -> CatalogCustomer | None:
    if not _plausible(customer_id):
        return None
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    terms = await _find_terms(session, customer_id, include_inactive=True)
    return CatalogCustomer(id=customer.id, name=customer.name, active=customer.active, contract=terms)


async def list_customers(*, session: AsyncSession, include_inactive: bool = False) -> list[CatalogCustomer]:
    """Customers by id, each with its active contract; deactivated ones only if asked."""
    query = select(Customer).order_by(Customer.id)
    if not include_inactive:
        query = query.where(Customer.active)
    customers = list(await session.scalars(query))
    found = await session.execute(_contracts_with_parties(include_inactive=include_inactive))
    terms = {
        contract.customer_id: _terms(contract, customer, partner) for contract, customer, partner in found
    }
    return [
        CatalogCustomer(id=c.id, name=c.name, active=c.active, contract=terms.get(c.id)) for c in customers
    ]


async def deactivate_customer(*, session: AsyncSession, customer_id: str) -> CatalogCustomer | None:
    """Stop new tickets for `customer_id` and commit; None if unknown. Idempotent.

    Its contract stays active for the record, and its open tickets run on.
    """
    if not _plausible(customer_id):
        return None
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    customer.active = False
    await session.commit()
    return await get_customer(session=session, customer_id=customer_id)


async def edited_terms(*, session: AsyncSession, customer_id: str, **changes: Any) -> ContractTerms:
    """The customer's contract with `changes` applied, checked as an edit is, written nowhere:
    what a PUT of them would store, and the candidate contract of a what-if (issue 20)."""
    unknown = changes.keys() - EDITABLE_TERMS
    if unknown:
        raise ValueError(f"not editable contract terms: {', '.join(sorted(unknown))}")
    current = await _find_terms(session, customer_id, include_inactive=True)
    if current is None:
        raise ContractNotFound(customer_id)
    if await customer_status(session=session, customer_id=customer_id) == CustomerStatus.DEACTIVATED:
        raise CustomerDeactivated(
            "id",
            "customer_deactivated",
            f"customer {customer_id!r} is deactivated; its contract is kept for the record only.",
        )
    # Validate through the model so a bad tier or override never reaches the table.
    edited = _labelled(_validated_terms(current.model_dump() | changes))
    await _check_terms(session, edited)
    return edited


async def update_contract(*, session: AsyncSession, customer_id: str, **changes: Any) -> ContractTerms:
    """Edit the customer's active contract, bump its revision, and commit.

    Open tickets are unaffected: they run on the terms pinned at intake.
    """
    edited = await edited_terms(session=session, customer_id=customer_id, **changes)
    contract = await session.get_one(Contract, edited.contract_id)
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
