"""API keys: each key is one principal (DESIGN.md §11), stored only as the SHA-256 of its secret.

A secret is shown once, when the key is made; after that only its public id (`key_...`)
appears anywhere: in lists, logs and revocations. A lookup hashes the presented secret and
finds the row by the unique hash index, so no stored secret is ever compared character by
character.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Final

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import CATALOG_ID, CatalogRefused, DuplicateId
from store.db import ApiKey, Customer, Partner, dialect_insert, utcnow
from workflows.enums import Role
from workflows.models import Principal
from workflows.text import check_clean_text

SECRET_PREFIX: Final = "esk_"
KEY_ID_PREFIX: Final = "key_"
KEY_ID = re.compile(r"^key_[0-9a-f]{12}$")
# Roles a key can carry; `system` is the workflow itself, never a caller of the API.
KEY_ROLES: Final = (Role.ADMIN, Role.SUPPORT, Role.PARTNER, Role.CUSTOMER)

# DESIGN.md §8: seeded by `make up`, printed in its banner. Public on purpose: never deploy them.
DEMO_KEYS: Final[dict[str, Principal]] = {
    "dev-admin": Principal(role=Role.ADMIN, name="dev-admin"),
    "dev-support": Principal(role=Role.SUPPORT, name="dev-support", level=3),
    "dev-partner-northwind": Principal(role=Role.PARTNER, name="northwind", partner_id="northwind"),
    "dev-customer-acme": Principal(role=Role.CUSTOMER, name="acme", customer_id="acme"),
}


class ApiKeyPublic(BaseModel):
    """What may be shown about a key: everything but its secret and hash."""

    id: str
    name: str
    role: Role
    level: int | None
    partner_id: str | None
    customer_id: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def principal(self) -> Principal:
        return Principal(
            role=self.role,
            name=self.name,
            level=self.level,
            partner_id=self.partner_id,
            customer_id=self.customer_id,
            key_id=self.id,
        )


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(6)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _a(role: Role) -> str:
    return f"an {role.value}" if role.value[0] in "aeiou" else f"a {role.value}"


def _public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        role=Role(key.role),
        level=key.level,
        partner_id=key.partner_id,
        customer_id=key.customer_id,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def _check_scope(
    session: AsyncSession,
    *,
    role: Role,
    level: int | None,
    partner_id: str | None,
    customer_id: str | None,
) -> None:
    """A key carries exactly the scoping its role needs: a level, a partner or a customer."""
    needs = {Role.SUPPORT: "level", Role.PARTNER: "partner_id", Role.CUSTOMER: "customer_id"}.get(role)
    given = {"level": level, "partner_id": partner_id, "customer_id": customer_id}
    for field, value in given.items():
        if value is not None and field != needs:
            raise CatalogRefused(
                field,
                "scope_not_allowed",
                f"{_a(role)} key has no {field}; "
                + (f"it is scoped by {needs} alone." if needs else "leave it out."),
            )
    if needs is not None and given[needs] is None:
        raise CatalogRefused(needs, "scope_required", f"{_a(role)} key needs a {needs}.")
    if role == Role.SUPPORT and not (level is not None and 1 <= level <= 4):
        raise CatalogRefused("level", "invalid_level", "a support engineer's level is 1, 2, 3 or 4.")
    if partner_id is not None and (
        not CATALOG_ID.fullmatch(partner_id) or await session.get(Partner, partner_id) is None
    ):
        raise CatalogRefused(
            "partner_id", "unknown_partner", f"no partner {partner_id!r}; register it first."
        )
    if customer_id is not None and (
        not CATALOG_ID.fullmatch(customer_id) or await session.get(Customer, customer_id) is None
    ):
        raise CatalogRefused(
            "customer_id", "unknown_customer", f"no customer {customer_id!r}; onboard it first."
        )


async def create_key(
    *,
    session: AsyncSession,
    name: str,
    role: Role | str,
    level: int | None = None,
    partner_id: str | None = None,
    customer_id: str | None = None,
) -> tuple[ApiKeyPublic, str]:
    """Make a key and commit. Returns the key and its secret; the secret is not kept."""
    try:
        key_role = Role(role)
    except ValueError:
        key_role = None
    if key_role not in KEY_ROLES:
        raise CatalogRefused("role", "invalid_role", f"use one of {', '.join(r.value for r in KEY_ROLES)}.")
    assert key_role is not None
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise CatalogRefused("name", "invalid_name", "a key's name has 1-100 characters.")
    try:
        check_clean_text(name)
    except ValueError as err:
        raise CatalogRefused("name", "invalid_text", f"{err}.") from None
    await _check_scope(session, role=key_role, level=level, partner_id=partner_id, customer_id=customer_id)
    await _check_name_free(session, role=key_role, name=name)
    secret = new_secret()
    key = ApiKey(
        id=new_key_id(),
        name=name,
        role=key_role.value,
        level=level,
        partner_id=partner_id,
        customer_id=customer_id,
        key_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    session.add(key)
    try:
        await session.commit()
    except IntegrityError:
        # Another request took the name between the check and the commit.
        await session.rollback()
        await _check_name_free(session, role=key_role, name=name)
        raise
    return _public(key), secret


async def _check_name_free(session: AsyncSession, *, role: Role, name: str) -> None:
    """A name names one key per role, revoked keys included: the audit trail keeps naming them."""
    taken = await session.scalar(select(ApiKey.id).where(ApiKey.role == role.value, ApiKey.name == name))
    if taken is not None:
        raise DuplicateId(
            "name",
            "duplicate_key_name",
            f"{_a(role)} key named {name!r} exists already ({taken}); choose another name, "
            "such as the person's full name or the system's purpose.",
        )


async def list_keys(*, session: AsyncSession, include_revoked: bool = True) -> list[ApiKeyPublic]:
    """Every key, oldest first; never a secret or a hash."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_public(key) for key in await session.scalars(query)]


async def revoke_key(*, session: AsyncSession, key_id: str) -> ApiKeyPublic | None:
    """Revoke a key and commit; None if there is no such key. Revoking twice keeps the first time."""
    if not KEY_ID.fullmatch(key_id):
        return None
    key = await session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.commit()
    return _public(key)


async def principal_for_secret(session: AsyncSession, secret: str) -> Principal | None:
    """The principal of a live key; None for an unknown or revoked one."""
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    if key is None or key.revoked_at is not None:
        return None
    return _public(key).principal


async def seed_demo_keys(*, session: AsyncSession) -> None:
    """Insert the demo keys where absent, then commit. Needs the demo catalog (acme, northwind).

    A demo key that exists, even revoked, is left as it is.
    """
    for secret, principal in DEMO_KEYS.items():
        try:
            await session.execute(
                dialect_insert(session, ApiKey)
                .values(
                    id=new_key_id(),
                    name=principal.name,
                    role=principal.role.value,
                    level=principal.level,
                    partner_id=principal.partner_id,
                    customer_id=principal.customer_id,
                    key_hash=hash_secret(secret),
                    created_at=utcnow(),
                )
                # Neither the same secret nor a key of the same role and name is made twice.
                .on_conflict_do_nothing()
            )
        except IntegrityError as err:
            await session.rollback()
            raise RuntimeError(
                "seeding the demo keys needs the demo catalog first (customer acme, partner northwind)"
            ) from err
    await session.commit()


async def live_key_for_secret(session: AsyncSession, secret: str) -> ApiKeyPublic | None:
    """The key (id and principal) of a live secret; None for an unknown or revoked one."""
    key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    return None if key is None or key.revoked_at is not None else _public(key)


async def live_key(session: AsyncSession, key_id: str) -> ApiKeyPublic | None:
    """The key with this id, unless it is unknown or revoked."""
    key = await session.get(ApiKey, key_id)
    return None if key is None or key.revoked_at is not None else _public(key)
