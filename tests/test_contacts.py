"""Notification recipients in the catalog: contacts, support teams, and who each audience is.

On every configured database backend (SQLite, and PostgreSQL when set): the service, the
admin API, and `recipients_for`. Every refused edit names the field and the rule and writes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from runtime.settings import Settings, get_settings
from store.catalog import CatalogRefused, ContactRole
from store.contacts import (
    CatalogContact,
    NewContact,
    UnknownOwner,
    UnknownTeam,
    check_email,
    get_customer_contacts,
    get_partner_contacts,
    get_support_team,
    list_support_teams,
    set_customer_contacts,
    set_partner_contacts,
    set_support_team,
)
from store.db import Contact, SupportTeam
from store.demo_catalog import seed_demo_catalog
from store.recipients import Recipients, recipients_for
from tests.fixtures_api import Stack
from worker import cli
from workflows.enums import Audience

Sessionmaker = async_sessionmaker[AsyncSession]

SETTINGS = Settings(
    pager_routing_key=SecretStr("connectsoft-routing-key"),
    partner_pager_routing_keys={"northwind": SecretStr("northwind-routing-key")},
)
TEAMS = ["support_l1", "support_l2", "engineering_l3", "leadership_l4", "support_lead", "on_call"]


@pytest.fixture
async def seeded(sessionmaker: Sessionmaker) -> Sessionmaker:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    return sessionmaker


async def recipient_rows(sessionmaker: Sessionmaker) -> list[tuple[Any, ...]]:
    async with sessionmaker() as session:
        rows: list[tuple[Any, ...]] = []
        for table in ("contacts", "support_teams"):
            rows += [(table, *row) for row in await session.execute(text(f"SELECT * FROM {table}"))]
        return sorted(rows, key=repr)


# --- The demo catalog -------------------------------------------------------------------------


async def test_the_demo_catalog_has_contacts_for_every_customer_and_partner(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        acme = await get_customer_contacts(session=session, customer_id="acme")
        everyone = {
            customer: await get_customer_contacts(session=session, customer_id=customer)
            for customer in ("globex", "initech", "umbrella", "contoso")
        }
        northwind = await get_partner_contacts(session=session, partner_id="northwind")

    assert acme == [
        CatalogContact(
            name="Acme Operations",
            email="ops@acme.example",
            role=ContactRole.NOTIFY,
            timezone="Europe/Berlin",
        )
    ]
    assert all(len(found) == 1 and found[0].role == ContactRole.NOTIFY for found in everyone.values())
    assert [(c.email, c.role) for c in northwind] == [
        ("support@northwind.example", ContactRole.NOTIFY),
        ("oncall@northwind.example", ContactRole.ON_CALL),
    ]


async def test_the_demo_catalog_sets_up_every_support_team(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        teams = await list_support_teams(session=session)

    assert [team.audience.value for team in teams] == TEAMS
    by_audience = {team.audience: team for team in teams}
    assert (by_audience[Audience.SUPPORT_L1].chat_channel, by_audience[Audience.SUPPORT_L1].email) == (
        "#support-l1",
        "l1@connectsoft.example",
    )
    on_call = by_audience[Audience.ON_CALL]
    assert (on_call.chat_channel, on_call.email, on_call.timezone) == (
        "#on-call",
        "oncall@connectsoft.example",
        "UTC",
    )


async def test_seeding_again_adds_nothing_and_keeps_edited_contacts_and_teams(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        await set_customer_contacts(
            session=session, customer_id="acme", contacts=[NewContact("Acme IT", "it@acme.example")]
        )
        await set_support_team(session=session, audience="support_l2", name="L2", chat_channel="#l2-team")
    before = await recipient_rows(seeded)

    async with seeded() as session:
        await seed_demo_catalog(session=session)

    assert await recipient_rows(seeded) == before
    async with seeded() as session:
        assert [c.email for c in await get_customer_contacts(session=session, customer_id="acme")] == [
            "it@acme.example"
        ]
        team = await get_support_team(session=session, audience=Audience.SUPPORT_L2)
    assert team is not None and (team.name, team.email, team.chat_channel) == ("L2", None, "#l2-team")


# --- Editing contacts -------------------------------------------------------------------------


async def test_a_put_replaces_the_whole_list_in_the_order_given(seeded: Sessionmaker) -> None:
    wanted = [
        NewContact("Acme NOC", "NOC@Acme.Example", timezone="America/New_York"),
        NewContact("Acme CTO", "cto@acme.example"),
    ]
    async with seeded() as session:
        saved = await set_customer_contacts(session=session, customer_id="acme", contacts=wanted)
    async with seeded() as session:
        found = await get_customer_contacts(session=session, customer_id="acme")

    assert saved == found
    assert [(c.name, c.email, c.timezone) for c in found] == [
        ("Acme NOC", "noc@acme.example", "America/New_York"),
        ("Acme CTO", "cto@acme.example", None),
    ]
    async with seeded() as session:
        assert await set_customer_contacts(session=session, customer_id="acme", contacts=[]) == []
        assert await get_customer_contacts(session=session, customer_id="acme") == []
        # Other owners' contacts are untouched.
        assert len(await get_customer_contacts(session=session, customer_id="globex")) == 1


async def test_a_partner_has_notify_and_on_call_contacts(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        saved = await set_partner_contacts(
            session=session,
            partner_id="northwind",
            contacts=[
                NewContact("Northwind desk", "desk@northwind.example"),
                # The same address may be both: it is told and it is paged.
                NewContact("Northwind desk", "desk@northwind.example", role="on_call"),
            ],
        )

    assert [(c.email, c.role) for c in saved] == [
        ("desk@northwind.example", ContactRole.NOTIFY),
        ("desk@northwind.example", ContactRole.ON_CALL),
    ]


@pytest.mark.parametrize(
    "address",
    ["ops@acme.example", "first.last+tickets@mail.acme.co.uk", "o'brien@acme.example", "x@a-b.example"],
)
def test_plain_addresses_are_accepted_and_lowercased(address: str) -> None:
    assert check_email("email", address.upper()) == address.lower()


BAD_CUSTOMER_CONTACTS = [
    pytest.param([NewContact("Ops", "ops.acme.example")], "contacts.0.email", "invalid_email", id="no-at"),
    pytest.param(
        [NewContact("Ops", "Ops <ops@acme.example>")], "contacts.0.email", "invalid_email", id="display-name"
    ),
    pytest.param([NewContact("Ops", "ops @acme.example")], "contacts.0.email", "invalid_email", id="space"),
    pytest.param([NewContact("Ops", "ops..x@acme.example")], "contacts.0.email", "invalid_email", id="dots"),
    pytest.param([NewContact("Ops", "ops@localhost")], "contacts.0.email", "invalid_email", id="one-label"),
    pytest.param([NewContact("Ops", "ops@acme.example.")], "contacts.0.email", "invalid_email", id="end-dot"),
    pytest.param([NewContact("Ops", "ops@-acme.example")], "contacts.0.email", "invalid_email", id="hyphen"),
    pytest.param(
        [NewContact("Ops", "öps@acme.example")], "contacts.0.email", "invalid_email", id="non-ascii"
    ),
    pytest.param(
        [NewContact("Ops", f"{'o' * 65}@acme.example")], "contacts.0.email", "invalid_email", id="local-65"
    ),
    pytest.param(
        [NewContact("Ops", f"ops@{'a' * 60 + '.'}{'b' * 60}.{'c' * 60}.{'d' * 60}.example")],
        "contacts.0.email",
        "invalid_email",
        id="over-254",
    ),
    pytest.param(
        [NewContact("Ops", "ops@acme.example"), NewContact("Ops", "ops@acme.example\x00")],
        "contacts.1.email",
        "invalid_email",
        id="second-nul",
    ),
    pytest.param(
        [NewContact("Ops", "ops@acme.example"), NewContact("Ops 2", "OPS@acme.example")],
        "contacts.1.email",
        "duplicate_contact",
        id="duplicate",
    ),
    pytest.param(
        [NewContact("Ops", "ops@acme.example", timezone="Berlin")],
        "contacts.0.timezone",
        "unknown_timezone",
        id="timezone",
    ),
    pytest.param(
        [NewContact("Ops", "ops@acme.example", role="on_call")],
        "contacts.0.role",
        "role_not_allowed",
        id="customer-on-call",
    ),
    pytest.param([NewContact(" ", "ops@acme.example")], "contacts.0.name", "invalid_name", id="blank-name"),
    pytest.param([NewContact("O\x07ps", "ops@acme.example")], "contacts.0.name", "invalid_text", id="bell"),
    pytest.param(
        [NewContact("Ops", f"o{i}@acme.example") for i in range(51)], "contacts", "too_many_contacts"
    ),
]


@pytest.mark.parametrize(("contacts", "field", "rule"), BAD_CUSTOMER_CONTACTS)
async def test_bad_contacts_are_refused_naming_field_and_rule_and_write_nothing(
    seeded: Sessionmaker, contacts: list[NewContact], field: str, rule: str
) -> None:
    before = await recipient_rows(seeded)

    async with seeded() as session:
        with pytest.raises(CatalogRefused) as refused:
            await set_customer_contacts(session=session, customer_id="acme", contacts=contacts)

    assert (refused.value.field, refused.value.rule, refused.value.status) == (field, rule, 422)
    assert await recipient_rows(seeded) == before


async def test_a_partner_contact_with_an_unknown_role_is_refused(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        with pytest.raises(CatalogRefused) as refused:
            await set_partner_contacts(
                session=session,
                partner_id="northwind",
                contacts=[NewContact("N", "n@nw.example", role="pager")],
            )

    assert (refused.value.field, refused.value.rule) == ("contacts.0.role", "role_not_allowed")
    assert "notify or on_call" in refused.value.message


@pytest.mark.parametrize("owner_id", ["hooli", "ACME", "ac\x00me", ""])
async def test_contacts_of_an_unknown_customer_or_partner_are_unknown(
    seeded: Sessionmaker, owner_id: str
) -> None:
    async with seeded() as session:
        for call in (
            get_customer_contacts(session=session, customer_id=owner_id),
            set_customer_contacts(session=session, customer_id=owner_id, contacts=[]),
            get_partner_contacts(session=session, partner_id=owner_id),
            set_partner_contacts(session=session, partner_id=owner_id, contacts=[]),
        ):
            with pytest.raises(UnknownOwner):
                await call


# --- Support teams ----------------------------------------------------------------------------


async def test_a_support_team_is_created_or_replaced(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker() as session:
        assert await get_support_team(session=session, audience="support_l2") is None
        created = await set_support_team(
            session=session, audience="support_l2", name="Support L2", email="L2@ConnectSoft.example"
        )
        replaced = await set_support_team(
            session=session,
            audience=Audience.SUPPORT_L2,
            name="Second line",
            chat_channel="#support-l2",
            timezone="Europe/Berlin",
        )
    async with sessionmaker() as session:
        found = await get_support_team(session=session, audience="support_l2")

    assert (created.email, created.chat_channel, created.timezone) == ("l2@connectsoft.example", None, "UTC")
    assert found == replaced
    assert (found.name, found.email, found.chat_channel, found.timezone) == (
        "Second line",
        None,
        "#support-l2",
        "Europe/Berlin",
    )


BAD_TEAMS = [
    pytest.param({"chat_channel": "support l2"}, "chat_channel", "invalid_chat_channel", id="no-hash"),
    pytest.param({"chat_channel": "#Support-L2"}, "chat_channel", "invalid_chat_channel", id="uppercase"),
    pytest.param({"email": "l2-at-connectsoft"}, "email", "invalid_email", id="email"),
    pytest.param({"email": None}, "email", "address_required", id="no-address"),
    pytest.param({"timezone": "Mars/Olympus"}, "timezone", "unknown_timezone", id="timezone"),
    pytest.param({"name": ""}, "name", "invalid_name", id="name"),
]


@pytest.mark.parametrize(("change", "field", "rule"), BAD_TEAMS)
async def test_bad_support_teams_are_refused_and_write_nothing(
    seeded: Sessionmaker, change: dict[str, Any], field: str, rule: str
) -> None:
    before = await recipient_rows(seeded)
    team: dict[str, Any] = {"name": "Support L2", "email": "l2@connectsoft.example"} | change

    async with seeded() as session:
        with pytest.raises(CatalogRefused) as refused:
            await set_support_team(session=session, audience="support_l2", **team)

    assert (refused.value.field, refused.value.rule) == (field, rule)
    assert await recipient_rows(seeded) == before


@pytest.mark.parametrize("audience", ["customer", "partner", "partner_on_call", "support_l5", ""])
async def test_only_connectsoft_audiences_are_support_teams(
    sessionmaker: Sessionmaker, audience: str
) -> None:
    async with sessionmaker() as session:
        with pytest.raises(UnknownTeam):
            await set_support_team(session=session, audience=audience, name="X", email="x@x.example")
        with pytest.raises(UnknownTeam):
            await get_support_team(session=session, audience=audience)
    assert await recipient_rows(sessionmaker) == []


# --- recipients_for ---------------------------------------------------------------------------


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def recipients(
    sessionmaker: Sessionmaker, audience: Audience, customer_id: str = "acme", partner_id: str | None = None
) -> Recipients:
    async with sessionmaker() as session:
        return await recipients_for(
            session=session,
            settings=SETTINGS,
            customer_id=customer_id,
            partner_id=partner_id,
            audience=audience,
        )


EXPECTED = [
    pytest.param(
        Audience.CUSTOMER,
        "acme",
        None,
        Recipients(("ops@acme.example",), None, "Europe/Berlin", None),
        id="acme",
    ),
    # No contact zone: the contract's.
    pytest.param(
        Audience.CUSTOMER,
        "globex",
        None,
        Recipients(("it@globex.example",), None, "America/New_York", None),
        id="globex",
    ),
    pytest.param(
        Audience.PARTNER,
        "contoso",
        "northwind",
        Recipients(("support@northwind.example",), None, "Europe/Amsterdam", None),
        id="partner",
    ),
    pytest.param(
        Audience.PARTNER_ON_CALL,
        "contoso",
        "northwind",
        Recipients(
            ("oncall@northwind.example",), None, "Europe/Amsterdam", SecretStr("northwind-routing-key")
        ),
        id="partner-on-call",
    ),
    # A ticket no partner delivers has no partner to tell.
    pytest.param(
        Audience.PARTNER, "acme", None, Recipients((), None, "Europe/Berlin", None), id="no-partner"
    ),
    pytest.param(
        Audience.SUPPORT_L2,
        "acme",
        None,
        Recipients(("l2@connectsoft.example",), "#support-l2", "UTC", None),
        id="support-l2",
    ),
    pytest.param(
        Audience.LEADERSHIP_L4,
        "contoso",
        "northwind",
        Recipients(("l4@connectsoft.example",), "#leadership-l4", "UTC", None),
        id="leadership-l4",
    ),
    pytest.param(
        Audience.ON_CALL,
        "acme",
        None,
        Recipients(("oncall@connectsoft.example",), "#on-call", "UTC", SecretStr("connectsoft-routing-key")),
        id="on-call",
    ),
]


@pytest.mark.parametrize(("audience", "customer_id", "partner_id", "expected"), EXPECTED)
async def test_each_audience_resolves_to_its_recipients_in_at_most_two_queries(
    seeded: Sessionmaker,
    db_engine: AsyncEngine,
    audience: Audience,
    customer_id: str,
    partner_id: str | None,
    expected: Recipients,
) -> None:
    with counted_statements(db_engine) as statements:
        found = await recipients(seeded, audience, customer_id, partner_id)

    # SecretStr compares by its secret.
    assert found == expected
    assert 1 <= len(statements) <= 2, statements


async def test_a_partner_without_a_routing_key_is_paged_by_email_only(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        found = await recipients_for(
            session=session,
            settings=Settings(),
            customer_id="contoso",
            partner_id="northwind",
            audience=Audience.PARTNER_ON_CALL,
        )

    assert found == Recipients(("oncall@northwind.example",), None, "Europe/Amsterdam", None)
    assert found.reachable


async def test_nothing_set_up_gives_no_recipients(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
        await session.execute(delete(Contact))
        await session.execute(delete(SupportTeam))
        await session.commit()

    customer = await recipients(sessionmaker, Audience.CUSTOMER, "umbrella")
    team = await recipients(sessionmaker, Audience.SUPPORT_L1)
    on_call = await recipients(sessionmaker, Audience.ON_CALL)

    assert customer == Recipients((), None, "Europe/London", None) and not customer.reachable
    assert team == Recipients((), None, "UTC", None) and not team.reachable
    # ConnectSoft's pager still has its key from the settings.
    assert on_call == Recipients((), None, "UTC", SecretStr("connectsoft-routing-key")) and on_call.reachable


async def test_the_first_contact_that_names_a_zone_sets_the_zone(seeded: Sessionmaker) -> None:
    async with seeded() as session:
        await set_customer_contacts(
            session=session,
            customer_id="acme",
            contacts=[
                NewContact("Acme CTO", "cto@acme.example"),
                NewContact("Acme US", "us@acme.example", timezone="America/Chicago"),
                NewContact("Acme JP", "jp@acme.example", timezone="Asia/Tokyo"),
            ],
        )

    found = await recipients(seeded, Audience.CUSTOMER, "acme")

    assert found.emails == ("cto@acme.example", "us@acme.example", "jp@acme.example")
    assert found.timezone == "America/Chicago"


# --- The admin API ----------------------------------------------------------------------------


async def test_customer_contacts_round_trip_and_reach_the_recipients(db_stack: Stack) -> None:
    admin = db_stack.as_("dev-admin")
    shown = await db_stack.http.get("/customers/acme/contacts", headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "contacts": [
            {
                "name": "Acme Operations",
                "email": "ops@acme.example",
                "role": "notify",
                "timezone": "Europe/Berlin",
            }
        ]
    }

    edited = shown.json()
    edited["contacts"].append({"name": "Acme CTO", "email": "CTO@acme.example"})
    saved = await db_stack.http.put("/customers/acme/contacts", json=edited, headers=admin)

    assert saved.status_code == 200, saved.text
    assert saved.json()["contacts"][1] == {
        "name": "Acme CTO",
        "email": "cto@acme.example",
        "role": "notify",
        "timezone": None,
    }
    assert (await db_stack.http.get("/customers/acme/contacts", headers=admin)).json() == saved.json()
    found = await recipients(db_stack.sessionmaker, Audience.CUSTOMER, "acme")
    assert found.emails == ("ops@acme.example", "cto@acme.example")


async def test_partner_contacts_and_on_call_round_trip(db_stack: Stack) -> None:
    admin = db_stack.as_("dev-admin")
    body = {
        "contacts": [
            {"name": "Northwind Desk", "email": "desk@northwind.example", "role": "notify"},
            {
                "name": "Northwind Night",
                "email": "night@northwind.example",
                "role": "on_call",
                "timezone": "UTC",
            },
        ]
    }

    saved = await db_stack.http.put("/partners/northwind/contacts", json=body, headers=admin)

    assert saved.status_code == 200, saved.text
    assert (await db_stack.http.get("/partners/northwind/contacts", headers=admin)).json() == saved.json()
    on_call = await recipients(db_stack.sessionmaker, Audience.PARTNER_ON_CALL, "contoso", "northwind")
    assert (on_call.emails, on_call.timezone) == (("night@northwind.example",), "UTC")


async def test_support_teams_are_listed_read_and_replaced(db_stack: Stack) -> None:
    admin = db_stack.as_("dev-admin")
    listed = await db_stack.http.get("/support-teams", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [team["audience"] for team in listed.json()] == TEAMS

    body = {"name": "Second line", "email": "second@connectsoft.example", "chat_channel": "#l2"}
    saved = await db_stack.http.put("/support-teams/support_l2", json=body, headers=admin)

    assert saved.status_code == 200, saved.text
    assert saved.json() == body | {"audience": "support_l2", "timezone": "UTC"}
    assert (await db_stack.http.get("/support-teams/support_l2", headers=admin)).json() == saved.json()
    found = await recipients(db_stack.sessionmaker, Audience.SUPPORT_L2)
    assert (found.emails, found.chat_channel) == (("second@connectsoft.example",), "#l2")


async def test_unknown_owners_and_teams_are_404_and_write_nothing(db_stack: Stack) -> None:
    admin = db_stack.as_("dev-admin")
    before = await recipient_rows(db_stack.sessionmaker)
    contacts = {"contacts": [{"name": "X", "email": "x@x.example"}]}
    team = {"name": "X", "email": "x@x.example"}

    answers = [
        await db_stack.http.get("/customers/hooli/contacts", headers=admin),
        await db_stack.http.put("/customers/hooli/contacts", json=contacts, headers=admin),
        await db_stack.http.put("/customers/ac%00me/contacts", json=contacts, headers=admin),
        await db_stack.http.get("/partners/fabrikam/contacts", headers=admin),
        await db_stack.http.put("/partners/fabrikam/contacts", json=contacts, headers=admin),
        await db_stack.http.get("/support-teams/customer", headers=admin),
        await db_stack.http.put("/support-teams/customer", json=team, headers=admin),
        await db_stack.http.put("/support-teams/support_l9", json=team, headers=admin),
    ]

    assert [(a.status_code, a.json()["rule"]) for a in answers] == [
        *[(404, "unknown_customer")] * 3,
        *[(404, "unknown_partner")] * 2,
        *[(404, "unknown_support_team")] * 3,
    ]
    assert "POST /customers onboards one" in answers[0].json()["detail"]
    assert await recipient_rows(db_stack.sessionmaker) == before


async def test_a_team_not_yet_set_up_is_404_until_put(db_stack: Stack) -> None:
    admin = db_stack.as_("dev-admin")
    async with db_stack.sessionmaker() as session:
        await session.execute(text("DELETE FROM support_teams WHERE audience = 'support_lead'"))
        await session.commit()

    missing = await db_stack.http.get("/support-teams/support_lead", headers=admin)
    created = await db_stack.http.put(
        "/support-teams/support_lead", json={"name": "Lead", "chat_channel": "#lead"}, headers=admin
    )

    assert (missing.status_code, missing.json()["rule"]) == (404, "support_team_not_set_up")
    assert created.status_code == 200, created.text
    assert (await db_stack.http.get("/support-teams/support_lead", headers=admin)).json()["name"] == "Lead"


BAD_BODIES = [
    pytest.param(
        "/customers/acme/contacts",
        {"contacts": [{"name": "Ops", "email": "ops@acme.example"}, {"name": "Bad", "email": "bad@"}]},
        "contacts.1.email",
        "invalid_email",
        id="customer-email",
    ),
    pytest.param(
        "/customers/acme/contacts",
        {"contacts": [{"name": "Ops", "email": "ops@acme.example", "role": "on_call"}]},
        "contacts.0.role",
        "role_not_allowed",
        id="customer-on-call",
    ),
    pytest.param(
        "/partners/northwind/contacts",
        {"contacts": [{"name": "N", "email": "n@northwind.example", "timezone": "Europe/Atlantis"}]},
        "contacts.0.timezone",
        "unknown_timezone",
        id="partner-timezone",
    ),
    pytest.param(
        "/partners/northwind/contacts",
        {"contacts": [{"name": "N", "email": "n@northwind.example", "role": "pager"}]},
        "contacts.0.role",
        "invalid_request",
        id="partner-role",
    ),
    pytest.param(
        "/customers/acme/contacts",
        {"contacts": [{"name": "Ops", "mail": "ops@acme.example"}]},
        "contacts.0.mail",
        "invalid_request",
        id="misspelled-field",
    ),
    pytest.param(
        "/support-teams/support_l2",
        {"name": "L2", "email": "l2@connectsoft.example", "chat_channel": "support-l2"},
        "chat_channel",
        "invalid_chat_channel",
        id="team-channel",
    ),
    pytest.param(
        "/support-teams/on_call", {"name": "On-call"}, "email", "address_required", id="team-without-address"
    ),
]


@pytest.mark.parametrize(("path", "body", "field", "rule"), BAD_BODIES)
async def test_bad_bodies_are_422_naming_field_and_rule_and_write_nothing(
    db_stack: Stack, path: str, body: dict[str, Any], field: str, rule: str
) -> None:
    before = await recipient_rows(db_stack.sessionmaker)

    response = await db_stack.http.put(path, json=body, headers=db_stack.as_("dev-admin"))

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["rule"] == rule
    assert f"{field}: " in problem["detail"], problem["detail"]
    assert await recipient_rows(db_stack.sessionmaker) == before


@pytest.mark.parametrize(
    "owner", [{"customer_id": "acme", "partner_id": "northwind"}, {}], ids=["both", "neither"]
)
async def test_the_database_refuses_a_contact_without_exactly_one_owner(
    seeded: Sessionmaker, owner: dict[str, str]
) -> None:
    async with seeded() as session:
        session.add(Contact(**owner, role="notify", name="X", email="x@x.example"))
        with pytest.raises(IntegrityError):
            await session.commit()


# --- `escalator contacts` and `escalator teams` -----------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ESCALATOR_DATABASE_URL", url)
    monkeypatch.setenv("ESCALATOR_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    assert cli.main(["seed"]) == 0
    yield url
    get_settings.cache_clear()


def table_rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:] if line.strip()]


def test_cli_lists_and_replaces_contacts(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli.main(["contacts", "list", "--partner", "northwind"]) == 0
    assert [row[-3] for row in table_rows(capsys.readouterr().out)] == [
        "support@northwind.example",
        "oncall@northwind.example",
    ]

    replace = ["contacts", "set", "--partner", "northwind", "--notify", "Desk", "desk@northwind.example"]
    assert cli.main([*replace, "--on-call", "Night", "night@northwind.example", "Asia/Tokyo"]) == 0
    assert table_rows(capsys.readouterr().out) == [
        ["Desk", "desk@northwind.example", "notify", "-"],
        ["Night", "night@northwind.example", "on_call", "Asia/Tokyo"],
    ]
    assert cli.main(["contacts", "list", "--partner", "northwind"]) == 0
    assert len(table_rows(capsys.readouterr().out)) == 2

    assert cli.main(["contacts", "set", "--customer", "acme", "--notify", "Ops", "ops@"]) == 2
    refused = capsys.readouterr().err
    assert "contacts.0.email" in refused and "invalid_email" in refused
    assert cli.main(["contacts", "set", "--customer", "acme"]) == 2
    assert "--clear" in capsys.readouterr().err
    assert cli.main(["contacts", "set", "--customer", "hooli", "--clear"]) == 1
    assert "no customer 'hooli'" in capsys.readouterr().err
    assert cli.main(["contacts", "list", "--customer", "acme"]) == 0
    assert table_rows(capsys.readouterr().out) == [
        ["Acme", "Operations", "ops@acme.example", "notify", "Europe/Berlin"]
    ]
    assert cli.main(["contacts", "set", "--customer", "acme", "--clear"]) == 0
    assert table_rows(capsys.readouterr().out) == []


def test_cli_lists_and_sets_up_support_teams(cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli.main(["teams", "list"]) == 0
    assert [row[0] for row in table_rows(capsys.readouterr().out)] == TEAMS

    setting = [
        "teams",
        "set",
        "support_l2",
        "--name",
        "L2",
        "--chat-channel",
        "#l2",
        "--timezone",
        "Europe/Berlin",
    ]
    assert cli.main(setting) == 0
    assert table_rows(capsys.readouterr().out) == [["support_l2", "L2", "-", "#l2", "Europe/Berlin"]]
    assert cli.main(["teams", "set", "customer", "--name", "X", "--email", "x@x.example"]) == 1
    assert "the teams are support_l1" in capsys.readouterr().err
    assert cli.main(["teams", "set", "on_call", "--name", "On-call"]) == 2
    assert "address_required" in capsys.readouterr().err
