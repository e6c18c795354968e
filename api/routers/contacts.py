"""/customers/{id}/contacts and /partners/{id}/contacts: who hears of their tickets. Admin keys only.

A customer's contacts get its tickets' updates; a partner's `notify` contacts get its
customers' updates and its `on_call` contacts its pages (store/recipients.py).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.auth import AdminDep
from api.catalog_schemas import refusal
from api.contact_schemas import ContactsPublic, ContactsUpdate
from api.deps import SessionDep
from api.errors import ApiError, problem_responses
from store import contacts
from store.catalog import CatalogRefused

log = logging.getLogger("escalator.catalog")

router = APIRouter(tags=["contacts"])

# Every catalog route needs an admin key.
REFUSALS = problem_responses(401, 403, 404)


def _unknown(err: contacts.UnknownOwner) -> ApiError:
    if err.kind == "customer":
        hint = "GET /customers lists them, POST /customers onboards one"
    else:
        hint = "GET /partners lists them, POST /partners registers one"
    return ApiError(404, f"No {err.kind} {err.owner_id!r}: {hint}.", rule=f"unknown_{err.kind}")


def _new_contacts(body: ContactsUpdate) -> list[contacts.NewContact]:
    return [contacts.NewContact(**contact.model_dump()) for contact in body.contacts]


@router.get("/customers/{customer_id}/contacts", response_model=ContactsPublic, responses=REFUSALS)
async def get_customer_contacts(customer_id: str, admin: AdminDep, session: SessionDep) -> ContactsPublic:
    """The customer's contacts, who get the updates on its tickets."""
    try:
        found = await contacts.get_customer_contacts(session=session, customer_id=customer_id)
    except contacts.UnknownOwner as err:
        raise _unknown(err) from None
    return ContactsPublic.of(found)


@router.put(
    "/customers/{customer_id}/contacts",
    response_model=ContactsPublic,
    responses=REFUSALS | problem_responses(422),
)
async def replace_customer_contacts(
    customer_id: str, body: ContactsUpdate, admin: AdminDep, session: SessionDep
) -> ContactsPublic:
    """Replace the customer's contacts (role `notify`). Open tickets notify the new ones."""
    try:
        saved = await contacts.set_customer_contacts(
            session=session, customer_id=customer_id, contacts=_new_contacts(body)
        )
    except contacts.UnknownOwner as err:
        raise _unknown(err) from None
    except CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s set %d contacts of customer %s", admin, len(saved), customer_id)
    return ContactsPublic.of(saved)


@router.get("/partners/{partner_id}/contacts", response_model=ContactsPublic, responses=REFUSALS)
async def get_partner_contacts(partner_id: str, admin: AdminDep, session: SessionDep) -> ContactsPublic:
    """The partner's contacts: `notify` for its customers' updates, `on_call` for its pages."""
    try:
        found = await contacts.get_partner_contacts(session=session, partner_id=partner_id)
    except contacts.UnknownOwner as err:
        raise _unknown(err) from None
    return ContactsPublic.of(found)


@router.put(
    "/partners/{partner_id}/contacts",
    response_model=ContactsPublic,
    responses=REFUSALS | problem_responses(422),
)
async def replace_partner_contacts(
    partner_id: str, body: ContactsUpdate, admin: AdminDep, session: SessionDep
) -> ContactsPublic:
    """Replace the partner's contacts, `notify` and `on_call` alike. Its pager routing key is
    a setting (ESCALATOR_PARTNER_PAGER_ROUTING_KEYS), never stored here."""
    try:
        saved = await contacts.set_partner_contacts(
            session=session, partner_id=partner_id, contacts=_new_contacts(body)
        )
    except contacts.UnknownOwner as err:
        raise _unknown(err) from None
    except CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s set %d contacts of partner %s", admin, len(saved), partner_id)
    return ContactsPublic.of(saved)
