"""API keys: stored only as a hash, shown once, revocable; the Bearer dependency; admin-only
catalog endpoints; the `escalator keys` commands."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.principal_cache import PrincipalCache
from store import keys
from store.catalog import CatalogRefused
from store.db import ApiKey, alembic_config, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import DEMO_KEYS, create_key, principal_for_secret, revoke_key, seed_demo_keys
from tests.fixtures_api import Stack, recorded_timeline
from worker import cli
from workflows.enums import Role
from workflows.models import Principal

Sessionmaker = async_sessionmaker[AsyncSession]

NOT_ADMINS = ("dev-support", "dev-partner-northwind", "dev-customer-acme")


@pytest.fixture
async def catalog(sessionmaker: Sessionmaker) -> Sessionmaker:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    return sessionmaker


async def raw_key_rows(sessionmaker: Sessionmaker) -> list[tuple[Any, ...]]:
    async with sessionmaker() as session:
        return [tuple(row) for row in await session.execute(text("SELECT * FROM api_keys"))]


# --- The key store, on every database backend ----------------------------------------------------


async def test_a_key_is_stored_only_as_the_sha256_of_its_secret(catalog: Sessionmaker) -> None:
    async with catalog() as session:
        created, secret = await create_key(session=session, name="anna", role="support", level=2)

    rows = await raw_key_rows(catalog)
    assert len(rows) == 1
    assert secret.startswith("esk_") and len(secret) > 40
    assert all(secret not in str(value) for value in rows[0])
    async with catalog() as session:
        stored = await session.get(ApiKey, created.id)
    assert stored is not None and stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert created.id.startswith("key_") and len(created.id) == len("key_") + 12


async def test_a_secret_finds_its_principal_until_revoked(catalog: Sessionmaker) -> None:
    async with catalog() as session:
        created, secret = await create_key(
            session=session, name="northwind-ops", role="partner", partner_id="northwind"
        )
        other, other_secret = await create_key(
            session=session, name="acme-it", role="customer", customer_id="acme"
        )
        found = await principal_for_secret(session, secret)
        revoked = await revoke_key(session=session, key_id=created.id)
        revoked_again = await revoke_key(session=session, key_id=created.id)
        after = await principal_for_secret(session, secret)
        untouched = await principal_for_secret(session, other_secret)
        unknown = await principal_for_secret(session, "esk_" + "x" * 43)
        missing = await revoke_key(session=session, key_id="key_000000000000")

    assert found == Principal(
        role=Role.PARTNER, name="northwind-ops", partner_id="northwind", key_id=created.id
    )
    assert revoked is not None and revoked.revoked_at is not None
    assert revoked_again is not None and revoked_again.revoked_at == revoked.revoked_at
    assert after is None and unknown is None and missing is None
    assert untouched == other.principal
    assert other.principal == Principal(
        role=Role.CUSTOMER, name="acme-it", customer_id="acme", key_id=other.id
    )


async def test_demo_keys_are_seeded_once_and_a_revoked_one_stays_revoked(catalog: Sessionmaker) -> None:
    async with catalog() as session:
        await seed_demo_keys(session=session)
        principals = {secret: await principal_for_secret(session, secret) for secret in DEMO_KEYS}
        support = next(k for k in await keys.list_keys(session=session) if k.name == "dev-support")
        await revoke_key(session=session, key_id=support.id)
        await seed_demo_keys(session=session)
        listed = await keys.list_keys(session=session)
        support_after = await principal_for_secret(session, "dev-support")

    # Each seeded key is its demo principal, with the id it was stored under.
    assert {
        secret: p.model_copy(update={"key_id": None}) for secret, p in principals.items() if p
    } == DEMO_KEYS
    assert str(principals["dev-support"]) == f"support:dev-support ({support.id})"
    assert DEMO_KEYS["dev-support"].level == 3
    assert len(listed) == len(DEMO_KEYS)
    assert support_after is None


async def test_two_keys_of_one_role_cannot_share_a_name(catalog: Sessionmaker) -> None:
    async with catalog() as session:
        first, _ = await create_key(session=session, name="anna", role="support", level=1)
        with pytest.raises(CatalogRefused) as refused:
            await create_key(session=session, name=" anna ", role="support", level=3)
        # Another role may use the name: `support:anna` and `admin:anna` are told apart anyway.
        admin, _ = await create_key(session=session, name="anna", role="admin")
        # A revoked key keeps its name: the audit trail still names it.
        await revoke_key(session=session, key_id=first.id)
        with pytest.raises(CatalogRefused):
            await create_key(session=session, name="anna", role="support", level=2)

    assert (refused.value.status, refused.value.rule, refused.value.field) == (
        409,
        "duplicate_key_name",
        "name",
    )
    assert first.id in refused.value.detail
    assert {(row[1], row[2]) for row in await raw_key_rows(catalog)} == {
        ("anna", "support"),
        ("anna", "admin"),
    }
    assert str(first.principal) == f"support:anna ({first.id})" != str(admin.principal)


async def test_the_database_refuses_a_duplicate_name_the_check_missed(catalog: Sessionmaker) -> None:
    """The unique index of migration 0010 holds even when two requests race past the check."""
    async with catalog() as session:
        await create_key(session=session, name="ops", role="admin")
        session.add(ApiKey(id="key_0123456789ab", name="ops", role="admin", key_hash="0" * 64))
        with pytest.raises(IntegrityError):
            await session.commit()


BAD_KEYS = [
    pytest.param({"role": "support"}, "level", "scope_required", id="support-without-level"),
    pytest.param({"role": "support", "level": 5}, "level", "invalid_level", id="level-5"),
    pytest.param({"role": "partner"}, "partner_id", "scope_required", id="partner-without-id"),
    pytest.param(
        {"role": "partner", "partner_id": "nobody"}, "partner_id", "unknown_partner", id="unknown-partner"
    ),
    pytest.param(
        {"role": "customer", "customer_id": "hooli"}, "customer_id", "unknown_customer", id="unknown-customer"
    ),
    pytest.param({"role": "admin", "level": 4}, "level", "scope_not_allowed", id="admin-with-level"),
    pytest.param(
        {"role": "customer", "customer_id": "acme", "partner_id": "northwind"},
        "partner_id",
        "scope_not_allowed",
        id="customer-with-partner",
    ),
    pytest.param(
        {"role": "support", "level": 2, "customer_id": "acme"},
        "customer_id",
        "scope_not_allowed",
        id="support-with-customer",
    ),
    pytest.param({"role": "system"}, "role", "invalid_role", id="system"),
    pytest.param({"role": "admin", "name": " "}, "name", "invalid_name", id="blank-name"),
]


@pytest.mark.parametrize(("request_", "field", "rule"), BAD_KEYS)
async def test_a_key_carries_exactly_the_scoping_of_its_role(
    catalog: Sessionmaker, request_: dict[str, Any], field: str, rule: str
) -> None:
    async with catalog() as session:
        with pytest.raises(CatalogRefused) as refused:
            await create_key(session=session, **({"name": "k"} | request_))

    assert (refused.value.field, refused.value.rule) == (field, rule)
    assert await raw_key_rows(catalog) == []


# --- Authentication over HTTP --------------------------------------------------------------------


UNAUTHENTICATED_HEADERS = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "dev-admin"}, id="no-scheme"),
    pytest.param({"Authorization": "Basic ZGV2LWFkbWluOg=="}, id="basic"),
    pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
    pytest.param({"Authorization": "Bearer not-a-key"}, id="unknown-key"),
    pytest.param({"Authorization": "Bearer dev-admin-"}, id="almost-a-key"),
]


@pytest.mark.parametrize("headers", UNAUTHENTICATED_HEADERS)
async def test_no_or_a_bad_key_is_401_with_a_bearer_challenge(stack: Stack, headers: dict[str, str]) -> None:
    response = await stack.http.get("/api-keys", headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["rule"] == "unauthenticated"
    assert "Authorization: Bearer <api key>" in response.json()["detail"]


async def test_a_key_made_over_http_shows_its_secret_once_and_is_revoked_at_once(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = stack.as_("dev-admin")

    made = await stack.http.post("/api-keys", json={"name": "ops-admin", "role": "admin"}, headers=admin)
    assert made.status_code == 201, made.text
    key = made.json()
    secret = key["secret"]
    assert made.headers["cache-control"] == "no-store"
    assert made.headers["location"] == f"/api-keys/{key['id']}"
    assert (key["role"], key["name"], key["revoked_at"]) == ("admin", "ops-admin", None)

    # The new key works, and neither the list nor the table ever shows its secret again.
    listed = await stack.http.get("/api-keys", headers=stack.as_(secret))
    assert listed.status_code == 200
    assert secret not in listed.text and hashlib.sha256(secret.encode()).hexdigest() not in listed.text
    assert {k["id"] for k in listed.json()} >= {key["id"]}
    assert all("secret" not in k and "key_hash" not in k for k in listed.json())
    assert all(secret not in str(value) for row in await raw_key_rows(stack.sessionmaker) for value in row)

    revoked = await stack.http.delete(f"/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await stack.http.get("/api-keys", headers=stack.as_(secret))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    again = await stack.http.delete(f"/api-keys/{key['id']}", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = await stack.http.delete("/api-keys/key_000000000000", headers=admin)
    assert (missing.status_code, missing.json()["rule"]) == (404, "unknown_api_key")

    assert secret not in caplog.text
    assert "admin:dev-admin (key_" in caplog.text and f"created API key {key['id']}" in caplog.text


async def test_a_key_request_with_the_wrong_scoping_is_422_naming_the_field(stack: Stack) -> None:
    before = await raw_key_rows(stack.sessionmaker)
    admin = stack.as_("dev-admin")

    no_level = await stack.http.post("/api-keys", json={"name": "anna", "role": "support"}, headers=admin)
    extra = await stack.http.post(
        "/api-keys", json={"name": "x", "role": "admin", "scope": "all"}, headers=admin
    )
    system = await stack.http.post("/api-keys", json={"name": "x", "role": "system"}, headers=admin)

    assert (no_level.status_code, no_level.json()["rule"]) == (422, "scope_required")
    assert no_level.json()["detail"].startswith("level: ")
    assert (extra.status_code, extra.json()["rule"]) == (422, "invalid_request")
    assert "scope" in extra.json()["detail"]
    assert (system.status_code, system.json()["rule"]) == (422, "invalid_request")
    assert await raw_key_rows(stack.sessionmaker) == before


async def catalog_state(stack: Stack) -> list[tuple[Any, ...]]:
    async with stack.sessionmaker() as session:
        rows: list[tuple[Any, ...]] = []
        for table in ("customers", "partners", "contracts", "api_keys"):
            rows += [(table, *row) for row in await session.execute(text(f"SELECT * FROM {table}"))]
        return sorted(rows, key=repr)


def admin_requests(key_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    contract = {"tier": "standard", "product_type": "platform", "timezone": "UTC"}
    return [
        ("GET", "/customers", None),
        ("POST", "/customers", {"id": "hooli", "name": "Hooli", "contract": contract}),
        ("GET", "/customers/acme", None),
        ("GET", "/customers/acme/contract", None),
        ("PUT", "/customers/acme/contract", contract),
        ("DELETE", "/customers/acme", None),
        ("GET", "/partners", None),
        ("POST", "/partners", {"id": "fabrikam", "name": "Fabrikam", "connectsoft_tier": "basic"}),
        ("GET", "/api-keys", None),
        ("POST", "/api-keys", {"name": "mallory", "role": "admin"}),
        ("DELETE", f"/api-keys/{key_id}", None),
    ]


async def test_only_an_admin_key_reaches_the_catalog_and_others_change_nothing(stack: Stack) -> None:
    listed = await stack.http.get("/api-keys", headers=stack.as_("dev-admin"))
    admin_key_id = next(k["id"] for k in listed.json() if k["name"] == "dev-admin")
    before = await catalog_state(stack)

    answers: dict[tuple[str, str, str], tuple[int, str]] = {}
    for method, path, body in admin_requests(admin_key_id):
        for secret in (*NOT_ADMINS, None):
            headers = stack.as_(secret) if secret else {}
            response = await stack.http.request(method, path, json=body, headers=headers)
            answers[(method, path, secret or "no key")] = (response.status_code, response.json()["rule"])

    assert answers == {
        (method, path, who): (403, "forbidden") if who != "no key" else (401, "unauthenticated")
        for method, path, _ in admin_requests(admin_key_id)
        for who in (*NOT_ADMINS, "no key")
    }
    assert await catalog_state(stack) == before
    # The same requests as admin do go through (so the 403s above were not for another reason).
    for method, path, body in admin_requests(admin_key_id):
        response = await stack.http.request(method, path, json=body, headers=stack.as_("dev-admin"))
        assert response.is_success, (method, path, response.text)


async def test_the_forbidden_answer_says_an_admin_key_is_needed(stack: Stack) -> None:
    response = await stack.http.get("/customers", headers=stack.as_("dev-support"))

    assert response.status_code == 403
    assert "admin key" in response.json()["detail"]
    assert "support:dev-support" in response.json()["detail"]


async def test_the_openapi_document_declares_bearer_authentication(stack: Stack) -> None:
    document = (await stack.http.get("/openapi.json")).json()

    schemes = document["components"]["securitySchemes"]
    assert [scheme["scheme"].lower() for scheme in schemes.values()] == ["bearer"]
    (name,) = schemes
    assert {name: []} in document["paths"]["/customers"]["post"]["security"]
    assert {name: []} in document["paths"]["/api-keys"]["get"]["security"]


# --- `escalator keys` ---------------------------------------------------------------------------


def test_cli_creates_lists_and_revokes_keys_without_ever_listing_a_secret(
    cli_database: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert cli.main(["seed"]) == 0
    capsys.readouterr()

    assert (
        cli.main(["keys", "create", "--role", "partner", "--name", "nw-ops", "--partner", "northwind"]) == 0
    )
    created = capsys.readouterr()
    secret = created.out.strip()
    assert secret.startswith("esk_") and "\n" not in secret
    assert "only time the secret is shown" in created.err
    assert "partner:nw-ops" in created.err

    assert cli.main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[2]: line.split() for line in listing.splitlines()[1:]}
    assert set(rows) == {"dev-admin", "dev-support", "northwind", "acme", "nw-ops"}
    assert rows["nw-ops"][1:4] == ["partner", "nw-ops", "northwind"]
    assert rows["dev-support"][3:5] == ["level", "3"]
    for demo_secret in DEMO_KEYS:
        assert hashlib.sha256(demo_secret.encode()).hexdigest() not in listing
    assert secret not in listing and hashlib.sha256(secret.encode()).hexdigest() not in listing

    key_id = rows["nw-ops"][0]
    assert cli.main(["keys", "revoke", key_id]) == 0
    assert key_id in capsys.readouterr().out
    assert cli.main(["keys", "list"]) == 0
    revoked_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(key_id))
    assert revoked_line.split()[-1] != "-"  # the REVOKED column is filled
    assert cli.main(["keys", "revoke", "key_000000000000"]) == 1
    assert "no API key" in capsys.readouterr().err
    assert secret not in caplog.text


def test_cli_refuses_a_key_without_the_scoping_of_its_role(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--role", "customer", "--name", "hooli", "--customer", "hooli"]) == 2
    err = capsys.readouterr().err
    assert "customer_id: no customer 'hooli'" in err and "unknown_customer" in err
    assert cli.main(["keys", "list"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1:] == []


async def test_malformed_ids_are_unknown_on_every_backend(catalog: Sessionmaker) -> None:
    async with catalog() as session:
        assert await revoke_key(session=session, key_id="key_\x00") is None
        with pytest.raises(CatalogRefused) as customer:
            await create_key(session=session, name="x", role="customer", customer_id="ac\x00me")
        with pytest.raises(CatalogRefused) as partner:
            await create_key(session=session, name="x", role="partner", partner_id="NORTHWIND")

    assert (customer.value.field, customer.value.rule) == ("customer_id", "unknown_customer")
    assert (partner.value.field, partner.value.rule) == ("partner_id", "unknown_partner")


async def test_a_duplicate_key_name_over_http_is_409_and_changes_nothing(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    name = f"anna-{uuid.uuid4().hex[:6]}"
    made = await stack.http.post(
        "/api-keys", json={"name": name, "role": "support", "level": 1}, headers=admin
    )
    assert made.status_code == 201, made.text
    before = await raw_key_rows(stack.sessionmaker)

    again = await stack.http.post(
        "/api-keys", json={"name": name, "role": "support", "level": 3}, headers=admin
    )

    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    problem = again.json()
    assert (problem["rule"], problem["type"]) == (
        "duplicate_key_name",
        "urn:escalator:problem:duplicate_key_name",
    )
    assert problem["detail"].startswith("name: ") and made.json()["id"] in problem["detail"]
    assert await raw_key_rows(stack.sessionmaker) == before


async def two_keys_named_alike(stack: Stack) -> tuple[tuple[str, str], tuple[str, str]]:
    """An admin key and a support key that share a name: (secret, actor) of each."""
    name = f"anna-{uuid.uuid4().hex[:6]}"
    made = []
    for body in ({"role": "admin"}, {"role": "support", "level": 3}):
        response = await stack.http.post(
            "/api-keys", json={"name": name, **body}, headers=stack.as_("dev-admin")
        )
        assert response.status_code == 201, response.text
        key = response.json()
        made.append((key["secret"], f"{body['role']}:{name} ({key['id']})"))
    return made[0], made[1]


TICKET = {
    "customer_id": "acme",
    "title": "Audit export fails",
    "description": "The nightly export stops at 80%",
    "severity": 3,
    "product": "audit",
    "channel": "email",
    "category": "bug",
}


async def test_keys_sharing_a_name_are_separate_actors_and_idempotency_scopes(stack: Stack) -> None:
    (first, first_actor), (second, second_actor) = await two_keys_named_alike(stack)
    idempotency = {"Idempotency-Key": f"mail-{uuid.uuid4().hex}"}

    # One Idempotency-Key, two keys: two tickets, each in its own key's scope.
    filed = [
        await stack.http.post("/tickets", json=TICKET, headers={**stack.as_(secret), **idempotency})
        for secret in (first, second)
    ]
    assert [f.status_code for f in filed] == [201, 201], [f.text for f in filed]
    assert filed[0].json()["ticket_id"] != filed[1].json()["ticket_id"]

    # The same comment with the same Idempotency-Key from each key is two comments, not one
    # deduplicated against the other's (the update id is scoped by key id, not by name).
    ticket_id = filed[0].json()["ticket_id"]
    comment_key = {"Idempotency-Key": f"comment-{uuid.uuid4().hex}"}
    for secret in (first, second, first):
        commented = await stack.http.post(
            f"/tickets/{ticket_id}/comment",
            json={"body": "Any news?"},
            headers={**stack.as_(secret), **comment_key},
        )
        assert commented.status_code == 200, commented.text

    timeline = await recorded_timeline(stack, ticket_id)
    assert timeline[0].actor == first_actor
    comments = [event.actor for event in timeline if event.kind == "commented"]
    # The first key's retry is deduplicated against its own first comment only.
    assert comments == [first_actor, second_actor]
    assert first_actor != second_actor and first_actor.split(" ")[0].endswith(
        second_actor.split(" ")[0][-10:]
    )


async def test_migration_0010_keeps_the_oldest_name_and_renames_later_duplicates(
    db_engine: AsyncEngine,
) -> None:
    """Keys made before names were unique may share one; the upgrade must not fail on them."""

    def back_to_0009(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")

    async with db_engine.begin() as connection:
        await connection.run_sync(back_to_0009)
        for n, key_id in enumerate(("key_00000000000c", "key_00000000000a", "key_00000000000b")):
            await connection.execute(
                text(
                    "INSERT INTO api_keys (id, name, role, key_hash, created_at) "
                    "VALUES (:id, 'ops', :role, :hash, :at)"
                ),
                {
                    "id": key_id,
                    # The second and third are admins named like the first: they get renamed.
                    "role": "admin",
                    "hash": key_id.ljust(64, "0"),
                    "at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
                },
            )
    await migrate(db_engine)

    async with db_engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, name FROM api_keys ORDER BY created_at"))).all()
    assert [tuple(row) for row in rows] == [
        ("key_00000000000c", "ops"),
        ("key_00000000000a", "ops key_00000000000a"),
        ("key_00000000000b", "ops key_00000000000b"),
    ]


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clocked_cache(stack: Stack, clock: FakeClock, ttl_seconds: float) -> None:
    """A fresh principal cache for the stack's API, on `clock`."""
    app = stack.http._transport.app  # type: ignore[attr-defined]
    app.state.principal_cache = PrincipalCache(ttl_seconds, clock=clock)


async def cached_key(stack: Stack) -> tuple[str, str]:
    """A new admin key (id, secret), used once so its principal is in the cache."""
    body = {"name": f"cache-{uuid.uuid4().hex[:6]}", "role": "admin"}
    made = (await stack.http.post("/api-keys", json=body, headers=stack.as_("dev-admin"))).json()
    assert (await stack.http.get("/api-keys", headers=stack.as_(made["secret"]))).status_code == 200
    return made["id"], made["secret"]


async def test_a_key_revoked_elsewhere_is_refused_once_the_principal_cache_bound_has_passed(
    stack: Stack,
) -> None:
    clock = FakeClock()
    clocked_cache(stack, clock, ttl_seconds=5.0)
    key_id, secret = await cached_key(stack)
    # Revoked by another process (`escalator keys revoke`, another API replica): straight
    # in the database, past this API.
    async with stack.sessionmaker() as session:
        assert await revoke_key(session=session, key_id=key_id) is not None

    # Within the bound this replica still knows the key (the stated bound, not a leak)...
    clock.now += 4.9
    assert (await stack.http.get("/api-keys", headers=stack.as_(secret))).status_code == 200
    # ...and from the bound on it asks the database, which refuses it.
    clock.now += 0.1
    refused = await stack.http.get("/api-keys", headers=stack.as_(secret))
    assert (refused.status_code, refused.json()["rule"]) == (401, "unauthenticated")


async def test_a_key_revoked_through_the_api_is_refused_at_once_by_that_process(stack: Stack) -> None:
    # The clock never moves: only the revocation can end the cached entry.
    clocked_cache(stack, FakeClock(), ttl_seconds=3600.0)
    key_id, secret = await cached_key(stack)
    _, other = await cached_key(stack)
    revoked = await stack.http.delete(f"/api-keys/{key_id}", headers=stack.as_(other))
    assert revoked.status_code == 200

    refused = await stack.http.get("/api-keys", headers=stack.as_(secret))
    assert (refused.status_code, refused.json()["rule"]) == (401, "unauthenticated")
    # The other cached key is untouched.
    assert (await stack.http.get("/api-keys", headers=stack.as_(other))).status_code == 200


def test_a_request_that_read_a_key_before_its_revocation_cannot_cache_it_after() -> None:
    clock = FakeClock()
    cache = PrincipalCache(5.0, clock=clock)
    key = keys.ApiKeyPublic(
        id="key_0123456789ab",
        name="anna",
        role=Role.SUPPORT,
        level=2,
        partner_id=None,
        customer_id=None,
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    cache.put("hash-a", key)
    cache.forget_key(key.id)
    # A lookup that started before the revocation committed lands after it.
    cache.put("hash-a", key)
    assert cache.get("hash-a") is None
    # Once an entry read before the revocation would have expired, the id may be cached again.
    clock.now += 5.0
    cache.put("hash-a", key)
    assert cache.get("hash-a") == key
    # An unknown hash is never an entry, and an entry expires at its bound.
    assert cache.get("hash-b") is None
    clock.now += 5.0
    assert cache.get("hash-a") is None
