"""Who is told: customers' and partners' contacts, and ConnectSoft's support teams.

A customer's contacts get the updates on its tickets; a partner's `notify` contacts get its
customers' updates and its `on_call` contacts its pages. A support team row says where one of
ConnectSoft's own audiences (support_l1 ... leadership_l4, support_lead, on_call) is reached.
store/recipients.py reads them for each notification. Pager routing keys are secrets
and stay in the settings, never here.

Like the rest of the catalog, every edit is checked first and refused with a `CatalogRefused`
naming the field and the rule; a refused edit writes nothing. A PUT of contacts replaces the
owner's whole list in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import CATALOG_ID, CatalogRefused, ContactRole, check_name
from store.db import Contact, Customer, Partner, SupportTeam, dialect_insert
from workflows.entitlement import IntakeRefused, check_timezone
from workflows.enums import INTERNAL_AUDIENCES, Audience

__all__ = [
    "MAX_CONTACTS",
    "TEAM_AUDIENCES",
    "CatalogContact",
    "CatalogSupportTeam",
    "ContactRole",
    "NewContact",
    "UnknownOwner",
    "UnknownTeam",
    "check_email",
    "get_customer_contacts",
    "get_partner_contacts",
    "get_support_team",
    "list_support_teams",
    "set_customer_contacts",
    "set_partner_contacts",
    "set_support_team",
    "team_audience",
]

# ConnectSoft's own audiences, each reached through its support team row, in ladder order.
TEAM_AUDIENCES: Final = INTERNAL_AUDIENCES
MAX_CONTACTS: Final = 50

# A plain check, not RFC 5322 in full (no quoted local parts, comments or IP literals), and
# ASCII only: an internationalised domain is written in its xn-- form. The local part is
# dot-separated atoms of letters, digits and !#$%&'*+/=?^_`{|}~-; the domain has at least two
# labels of letters, digits and inner hyphens, the last one starting with a letter.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EMAIL: Final = re.compile(
    rf"^(?=.{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?$"
)
EMAIL_RULE: Final = "write it as name@example.com: ASCII, no spaces or display name, at most 254 characters"
# Chat channels as Slack and Teams webhooks name them: '#' and a lowercase name without spaces.
CHAT_CHANNEL: Final = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
CHAT_CHANNEL_RULE: Final = "'#' then 1-80 lowercase letters, digits, '.', '_' or '-', e.g. '#support-l2'"


class UnknownOwner(LookupError):
    """No such customer or partner: the API answers 404."""

    def __init__(self, kind: str, owner_id: str) -> None:
        super().__init__(f"no {kind} {owner_id!r}")
        self.kind = kind
        self.owner_id = owner_id


class UnknownTeam(LookupError):
    """`audience` is not one of ConnectSoft's support teams: the API answers 404."""

    def __init__(self, audience: str) -> None:
        super().__init__(f"no support team {audience!r}")
        self.audience = audience


@dataclass(frozen=True)
class NewContact:
    name: str
    email: str
    role: ContactRole | str = ContactRole.NOTIFY
    timezone: str | None = None


class CatalogContact(BaseModel):
    name: str
    email: str
    role: ContactRole
    timezone: str | None


class CatalogSupportTeam(BaseModel):
    audience: Audience
    name: str
    email: str | None
    chat_channel: str | None
    timezone: str


# --- Checks -----------------------------------------------------------------------------------


def check_email(field: str, value: str) -> str:
    """The address, lowercased, or a refusal naming `field` and the rule `invalid_email`."""
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise CatalogRefused(field, "invalid_email", f"{value!r} is not an email address: {EMAIL_RULE}.")
    return email


def _check_zone(field: str, value: str) -> str:
    try:
        check_timezone(value)
    except IntakeRefused as err:
        raise CatalogRefused(field, err.rule, err.message) from None
    return value


def _check_chat_channel(field: str, value: str) -> str:
    if not CHAT_CHANNEL.fullmatch(value):
        raise CatalogRefused(
            field, "invalid_chat_channel", f"{value!r} is not a channel name: use {CHAT_CHANNEL_RULE}."
        )
    return value


def _checked_contacts(
    contacts: Sequence[NewContact], *, roles: tuple[ContactRole, ...], owner: str
) -> list[CatalogContact]:
    if len(contacts) > MAX_CONTACTS:
        raise CatalogRefused("contacts", "too_many_contacts", f"at most {MAX_CONTACTS} contacts.")
    checked: list[CatalogContact] = []
    seen: set[tuple[ContactRole, str]] = set()
    for index, contact in enumerate(contacts):
        field = f"contacts.{index}"
        role: ContactRole | None
        try:
            role = ContactRole(contact.role)
        except ValueError:
            role = None
        if role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise CatalogRefused(
                f"{field}.role", "role_not_allowed", f"{owner} has {allowed} contacts, not {contact.role!r}."
            )
        email = check_email(f"{field}.email", contact.email)
        if (role, email) in seen:
            raise CatalogRefused(
                f"{field}.email", "duplicate_contact", f"{email} is listed twice as a {role.value} contact."
            )
        seen.add((role, email))
        timezone = None if contact.timezone is None else _check_zone(f"{field}.timezone", contact.timezone)
        checked.append(
            CatalogContact(
                name=check_name(f"{field}.name", contact.name), email=email, role=role, timezone=timezone
            )
        )
    return checked


# --- Contacts ---------------------------------------------------------------------------------


def _public(contact: Contact) -> CatalogContact:
    return CatalogContact(
        name=contact.name, email=contact.email, role=ContactRole(contact.role), timezone=contact.timezone
    )


async def _owner_exists(
    session: AsyncSession, entity: type[Customer] | type[Partner], owner_id: str, *, lock: bool = False
) -> bool:
    """`lock` holds the owner's row (PostgreSQL; SQLite has one writer anyway) until commit, so
    two edits of the same owner's contacts run one after the other."""
    # An id no customer or partner can have is unknown without asking (PostgreSQL refuses NUL).
    if CATALOG_ID.fullmatch(owner_id) is None:
        return False
    return await session.get(entity, owner_id, with_for_update=lock) is not None


async def _contacts_of(session: AsyncSession, owner: ColumnElement[bool]) -> list[CatalogContact]:
    # In the order they were given: a PUT inserts them in that order.
    found = await session.scalars(select(Contact).where(owner).order_by(Contact.id))
    return [_public(contact) for contact in found]


async def _replace_contacts(
    session: AsyncSession,
    owner: ColumnElement[bool],
    contacts: list[CatalogContact],
    *,
    customer_id: str | None = None,
    partner_id: str | None = None,
) -> list[CatalogContact]:
    await session.execute(delete(Contact).where(owner))
    session.add_all(
        Contact(
            customer_id=customer_id,
            partner_id=partner_id,
            role=contact.role.value,
            name=contact.name,
            email=contact.email,
            timezone=contact.timezone,
        )
        for contact in contacts
    )
    await session.commit()
    return contacts


async def get_customer_contacts(*, session: AsyncSession, customer_id: str) -> list[CatalogContact]:
    """The customer's contacts, in their order. Raises UnknownOwner for an unknown customer."""
    if not await _owner_exists(session, Customer, customer_id):
        raise UnknownOwner("customer", customer_id)
    return await _contacts_of(session, Contact.customer_id == customer_id)


async def set_customer_contacts(
    *, session: AsyncSession, customer_id: str, contacts: Sequence[NewContact]
) -> list[CatalogContact]:
    """Replace the customer's contacts (all `notify`), and commit. A deactivated customer's
    contacts stay editable: its open tickets still notify them."""
    if not await _owner_exists(session, Customer, customer_id, lock=True):
        raise UnknownOwner("customer", customer_id)
    checked = _checked_contacts(contacts, roles=(ContactRole.NOTIFY,), owner="a customer")
    return await _replace_contacts(
        session, Contact.customer_id == customer_id, checked, customer_id=customer_id
    )


async def get_partner_contacts(*, session: AsyncSession, partner_id: str) -> list[CatalogContact]:
    """The partner's `notify` and `on_call` contacts, in their order."""
    if not await _owner_exists(session, Partner, partner_id):
        raise UnknownOwner("partner", partner_id)
    return await _contacts_of(session, Contact.partner_id == partner_id)


async def set_partner_contacts(
    *, session: AsyncSession, partner_id: str, contacts: Sequence[NewContact]
) -> list[CatalogContact]:
    """Replace the partner's contacts, `notify` and `on_call` alike, and commit."""
    if not await _owner_exists(session, Partner, partner_id, lock=True):
        raise UnknownOwner("partner", partner_id)
    checked = _checked_contacts(contacts, roles=tuple(ContactRole), owner="a partner")
    return await _replace_contacts(session, Contact.partner_id == partner_id, checked, partner_id=partner_id)


# --- Support teams ----------------------------------------------------------------------------


def team_audience(audience: Audience | str) -> Audience:
    """The audience if it is one of ConnectSoft's support teams; else UnknownTeam."""
    try:
        found = Audience(audience)
    except ValueError:
        raise UnknownTeam(str(audience)) from None
    if found not in TEAM_AUDIENCES:
        raise UnknownTeam(found.value)
    return found


def _team(row: SupportTeam) -> CatalogSupportTeam:
    return CatalogSupportTeam(
        audience=Audience(row.audience),
        name=row.name,
        email=row.email,
        chat_channel=row.chat_channel,
        timezone=row.timezone,
    )


async def list_support_teams(*, session: AsyncSession) -> list[CatalogSupportTeam]:
    """The teams that are set up, in ladder order (L1 to L4, then the lead and on-call)."""
    rows = {row.audience: row for row in await session.scalars(select(SupportTeam))}
    return [_team(rows[audience.value]) for audience in TEAM_AUDIENCES if audience.value in rows]


async def get_support_team(*, session: AsyncSession, audience: Audience | str) -> CatalogSupportTeam | None:
    """The team's row; None if it is not set up. UnknownTeam if `audience` is no team."""
    row = await session.get(SupportTeam, team_audience(audience).value)
    return _team(row) if row else None


async def set_support_team(
    *,
    session: AsyncSession,
    audience: Audience | str,
    name: str,
    email: str | None = None,
    chat_channel: str | None = None,
    timezone: str = "UTC",
) -> CatalogSupportTeam:
    """Create or replace the team's row, and commit. It needs an email or a chat channel."""
    team = team_audience(audience)
    checked = CatalogSupportTeam(
        audience=team,
        name=check_name("name", name),
        email=None if email is None else check_email("email", email),
        chat_channel=None if chat_channel is None else _check_chat_channel("chat_channel", chat_channel),
        timezone=_check_zone("timezone", timezone),
    )
    if checked.email is None and checked.chat_channel is None:
        raise CatalogRefused(
            "email", "address_required", "a team is reached by email or in a chat channel; give one."
        )
    columns = checked.model_dump(mode="json", exclude={"audience"})
    # An upsert: two first PUTs of the same team cannot both insert.
    await session.execute(
        dialect_insert(session, SupportTeam)
        .values(audience=team.value, **columns)
        .on_conflict_do_update(index_elements=[SupportTeam.audience], set_=columns)
    )
    await session.commit()
    return checked
