"""The admin commands on the catalog: `escalator keys`, `customers`, `partners`, `contacts` and
`teams`. Each works on ESCALATOR_DATABASE_URL directly (migrating it first), as an admin key
does through the API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from runtime.settings import Settings, get_settings
from runtime.telemetry import configure_logging
from store import catalog, contacts, keys, partners
from store.db import make_engine, make_sessionmaker, migrate
from workflows.enums import ProductType, Tier

CatalogCommand = Callable[[AsyncSession, argparse.Namespace], Awaitable[int]]


def optional(value: str) -> str | None:
    """An optional text option: an empty string clears it."""
    return value or None


def add_keys_parser(subcommands: Any) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "keys", help="create, list and revoke API keys", description="API keys (stored hashed)."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; its secret is printed this once")
    create.add_argument("--role", required=True, choices=[role.value for role in keys.KEY_ROLES])
    create.add_argument("--name", required=True, help="who uses it, e.g. anna; events say role:name")
    create.add_argument("--level", type=int, help="support keys: the engineer's level, 1-4")
    create.add_argument("--partner", help="partner keys: the partner id")
    create.add_argument("--customer", help="customer keys: the customer id")
    create.set_defaults(run=run_keys_create)
    listing = actions.add_parser("list", help="every key, without secrets")
    listing.set_defaults(run=run_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, key_...")
    revoke.set_defaults(run=run_keys_revoke)
    return parser


def add_contract_options(parser: argparse.ArgumentParser, *, editing: bool) -> None:
    """The contract's terms as options; when editing, an option not given is not in `args`."""
    required = not editing
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if editing else {}
    parser.add_argument("--tier", required=required, choices=[t.value for t in Tier], **extra)
    parser.add_argument("--product-type", required=required, choices=[p.value for p in ProductType], **extra)
    parser.add_argument("--timezone", required=required, help="IANA zone, e.g. Europe/Berlin", **extra)
    parser.add_argument("--country", type=optional, help="ISO code for public holidays, e.g. DE", **extra)
    parser.add_argument(
        "--subdivision", type=optional, help="ISO 3166-2 for regional holidays, e.g. GB-ENG", **extra
    )
    parser.add_argument(
        "--coverage-24x7",
        action=argparse.BooleanOptionalAction,
        help="the Premium 24/7 option",
        **(extra or {"default": False}),
    )
    parser.add_argument(
        "--partner",
        dest="partner_id",
        metavar="PARTNER",
        type=optional,
        help="partner_delivered: the partner id",
        **extra,
    )
    parser.add_argument("--project", type=optional, help="bespoke: the project name", **extra)


def add_customers_parser(subcommands: Any) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "customers",
        help="onboard customers, edit their contracts, deactivate them",
        description="The customer catalog. Every contract change bumps its revision; open "
        "tickets keep the terms they were filed under.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="onboard a customer with its contract")
    add.add_argument("--id", required=True, dest="customer_id", metavar="ID")
    add.add_argument("--name", required=True)
    add_contract_options(add, editing=False)
    add.set_defaults(run=run_customers_add)
    listing = actions.add_parser("list", help="customers and their contracts")
    listing.add_argument("--all", action="store_true", help="deactivated customers too")
    listing.set_defaults(run=run_customers_list)
    contract = actions.add_parser(
        "contract", help="edit a customer's contract (only the options given; '' clears one)"
    )
    contract.add_argument("customer_id", metavar="ID")
    add_contract_options(contract, editing=True)
    contract.set_defaults(run=run_customers_contract)
    deactivate = actions.add_parser("deactivate", help="no new tickets; the contract stays on record")
    deactivate.add_argument("customer_id", metavar="ID")
    deactivate.set_defaults(run=run_customers_deactivate)
    return parser


def add_partners_parser(subcommands: Any) -> argparse.ArgumentParser:
    parser = subcommands.add_parser("partners", help="register partners", description="Partners.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a partner")
    add.add_argument("--id", required=True, dest="partner_id", metavar="ID")
    add.add_argument("--name", required=True)
    add.add_argument("--tier", required=True, choices=[t.value for t in Tier], help="its ConnectSoft tier")
    add.add_argument(
        "--coverage-24x7", action="store_true", help="its own 24/7 option with ConnectSoft (Premium)"
    )
    add.set_defaults(run=run_partners_add)
    listing = actions.add_parser("list", help="every partner")
    listing.set_defaults(run=run_partners_list)
    return parser


def print_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    cells = [header, *[tuple("-" if c is None else str(c) for c in row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def key_scope(key: keys.ApiKeyPublic) -> str:
    if key.level is not None:
        return f"level {key.level}"
    return key.partner_id or key.customer_id or "-"


async def run_keys_create(session: AsyncSession, args: argparse.Namespace) -> int:
    created, secret = await keys.create_key(
        session=session,
        name=args.name,
        role=args.role,
        level=args.level,
        partner_id=args.partner,
        customer_id=args.customer,
    )
    print(f"Created API key {created.id} for {created.principal} ({key_scope(created)}).", file=sys.stderr)
    print(
        "This is the only time the secret is shown; it is stored hashed and cannot be recovered. "
        "Store it now:",
        file=sys.stderr,
    )
    # The secret alone on stdout, so `KEY=$(escalator keys create ...)` works.
    print(secret)
    return 0


async def run_keys_list(session: AsyncSession, args: argparse.Namespace) -> int:
    found = await keys.list_keys(session=session)
    print_table(
        ("ID", "ROLE", "NAME", "SCOPE", "CREATED", "REVOKED"),
        [
            (
                key.id,
                key.role.value,
                key.name,
                key_scope(key),
                key.created_at.isoformat(timespec="seconds"),
                key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
            )
            for key in found
        ],
    )
    return 0


async def run_keys_revoke(session: AsyncSession, args: argparse.Namespace) -> int:
    revoked = await keys.revoke_key(session=session, key_id=args.key_id)
    if revoked is None:
        print(
            f"escalator keys revoke: no API key {args.key_id!r}; `escalator keys list` shows them.",
            file=sys.stderr,
        )
        return 1
    assert revoked.revoked_at is not None
    print(
        f"Revoked {revoked.id} ({revoked.principal}) at {revoked.revoked_at.isoformat(timespec='seconds')}."
    )
    return 0


def contract_row(customer: catalog.CatalogCustomer) -> tuple[object, ...]:
    terms = customer.contract
    if terms is None:
        return (customer.id, customer.name, "yes" if customer.active else "no", *[None] * 7)
    return (
        customer.id,
        customer.name,
        "yes" if customer.active else "no",
        terms.tier.value,
        terms.product_type.value,
        terms.timezone,
        terms.country,
        terms.partner_id,
        terms.project,
        terms.revision,
    )


CUSTOMER_COLUMNS = (
    "ID",
    "NAME",
    "ACTIVE",
    "TIER",
    "PRODUCT",
    "TIMEZONE",
    "COUNTRY",
    "PARTNER",
    "PROJECT",
    "REV",
)


async def run_customers_add(session: AsyncSession, args: argparse.Namespace) -> int:
    created = await catalog.create_customer(
        session=session,
        customer_id=args.customer_id,
        name=args.name,
        tier=args.tier,
        product_type=args.product_type,
        timezone=args.timezone,
        country=args.country,
        subdivision=args.subdivision,
        coverage_24x7=args.coverage_24x7,
        partner_id=args.partner_id,
        project=args.project,
    )
    print_table(CUSTOMER_COLUMNS, [contract_row(created)])
    return 0


async def run_customers_list(session: AsyncSession, args: argparse.Namespace) -> int:
    found = await catalog.list_customers(session=session, include_inactive=args.all)
    print_table(CUSTOMER_COLUMNS, [contract_row(customer) for customer in found])
    return 0


async def run_customers_contract(session: AsyncSession, args: argparse.Namespace) -> int:
    # The terms a catalog edit may change (overrides have no option here, so are never given).
    changes = {name: getattr(args, name) for name in catalog.EDITABLE_TERMS if hasattr(args, name)}
    if not changes:
        print("escalator customers contract: nothing to change; give at least one option.", file=sys.stderr)
        return 2
    try:
        terms = await catalog.update_contract(session=session, customer_id=args.customer_id, **changes)
    except catalog.ContractNotFound:
        print(f"escalator customers contract: no customer {args.customer_id!r}.", file=sys.stderr)
        return 1
    found = await catalog.get_customer(session=session, customer_id=args.customer_id)
    assert found is not None
    print(f"Contract {terms.contract_id} is now at revision {terms.revision}.")
    print_table(CUSTOMER_COLUMNS, [contract_row(found)])
    return 0


async def run_customers_deactivate(session: AsyncSession, args: argparse.Namespace) -> int:
    found = await catalog.deactivate_customer(session=session, customer_id=args.customer_id)
    if found is None:
        print(f"escalator customers deactivate: no customer {args.customer_id!r}.", file=sys.stderr)
        return 1
    print(f"Deactivated {found.id}: no new tickets. Its contract stays on record; open tickets run on.")
    return 0


PARTNER_COLUMNS = ("ID", "NAME", "CONNECTSOFT TIER", "24X7")


def partner_row(partner: partners.CatalogPartner) -> tuple[object, ...]:
    return (
        partner.id,
        partner.name,
        partner.connectsoft_tier.value,
        "yes" if partner.coverage_24x7 else "no",
    )


async def run_partners_add(session: AsyncSession, args: argparse.Namespace) -> int:
    created = await partners.create_partner(
        session=session,
        partner_id=args.partner_id,
        name=args.name,
        connectsoft_tier=args.tier,
        coverage_24x7=args.coverage_24x7,
    )
    print_table(PARTNER_COLUMNS, [partner_row(created)])
    return 0


async def run_partners_list(session: AsyncSession, args: argparse.Namespace) -> int:
    found = await partners.list_partners(session=session)
    print_table(PARTNER_COLUMNS, [partner_row(p) for p in found])
    return 0


def add_contacts_parser(subcommands: Any) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "contacts",
        help="list and replace a customer's or a partner's contacts",
        description="Who hears of a customer's tickets: its contacts, or its partner's "
        "(notify, and on_call for pages). `set` replaces the whole list.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (("list", "the contacts, in order"), ("set", "replace every contact")):
        action = actions.add_parser(name, help=help_text)
        owner = action.add_mutually_exclusive_group(required=True)
        owner.add_argument("--customer", dest="customer_id", metavar="ID")
        owner.add_argument("--partner", dest="partner_id", metavar="ID")
        if name == "set":
            for option, role, what in (
                ("--notify", "notify", "contact told of the tickets"),
                ("--on-call", "on_call", "partner's on-call contact, paged"),
            ):
                action.add_argument(
                    option,
                    dest=role,
                    action="append",
                    nargs="+",
                    default=[],
                    metavar=("NAME", "EMAIL"),
                    help=f"NAME EMAIL [ZONE]: a {what}; repeat for more",
                )
            action.add_argument("--clear", action="store_true", help="remove every contact")
        action.set_defaults(run=run_contacts_list if name == "list" else run_contacts_set)
    return parser


def add_teams_parser(subcommands: Any) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "teams",
        help="list and set up ConnectSoft's support teams",
        description="Where each of ConnectSoft's audiences is reached: "
        + ", ".join(audience.value for audience in contacts.TEAM_AUDIENCES)
        + ".",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the teams that are set up").set_defaults(run=run_teams_list)
    setting = actions.add_parser("set", help="set up or replace a team (an email, a chat channel, or both)")
    setting.add_argument("audience", metavar="AUDIENCE", help="e.g. support_l2")
    setting.add_argument("--name", required=True)
    setting.add_argument("--email")
    setting.add_argument("--chat-channel", help="e.g. '#support-l2'")
    setting.add_argument("--timezone", default="UTC", help="IANA zone to show due times in")
    setting.set_defaults(run=run_teams_set)
    return parser


CONTACT_COLUMNS = ("NAME", "EMAIL", "ROLE", "TIMEZONE")


def print_contacts(found: list[contacts.CatalogContact]) -> None:
    print_table(CONTACT_COLUMNS, [(c.name, c.email, c.role.value, c.timezone) for c in found])


async def run_contacts_list(session: AsyncSession, args: argparse.Namespace) -> int:
    try:
        if args.customer_id is not None:
            found = await contacts.get_customer_contacts(session=session, customer_id=args.customer_id)
        else:
            found = await contacts.get_partner_contacts(session=session, partner_id=args.partner_id)
    except contacts.UnknownOwner as err:
        print(f"escalator contacts list: {err}.", file=sys.stderr)
        return 1
    print_contacts(found)
    return 0


async def run_contacts_set(session: AsyncSession, args: argparse.Namespace) -> int:
    given = [(role, spec) for role in ("notify", "on_call") for spec in getattr(args, role)]
    if not given and not args.clear:
        print(
            "escalator contacts set: no contacts given; use --notify/--on-call, or --clear.", file=sys.stderr
        )
        return 2
    if any(not 2 <= len(spec) <= 3 for _, spec in given):
        print("escalator contacts set: each contact is NAME EMAIL [ZONE].", file=sys.stderr)
        return 2
    wanted = [contacts.NewContact(spec[0], spec[1], role, *spec[2:]) for role, spec in given]
    try:
        if args.customer_id is not None:
            saved = await contacts.set_customer_contacts(
                session=session, customer_id=args.customer_id, contacts=wanted
            )
        else:
            saved = await contacts.set_partner_contacts(
                session=session, partner_id=args.partner_id, contacts=wanted
            )
    except contacts.UnknownOwner as err:
        print(f"escalator contacts set: {err}.", file=sys.stderr)
        return 1
    print_contacts(saved)
    return 0


TEAM_COLUMNS = ("AUDIENCE", "NAME", "EMAIL", "CHAT CHANNEL", "TIMEZONE")


def team_row(team: contacts.CatalogSupportTeam) -> tuple[object, ...]:
    return (team.audience.value, team.name, team.email, team.chat_channel, team.timezone)


async def run_teams_list(session: AsyncSession, args: argparse.Namespace) -> int:
    print_table(TEAM_COLUMNS, [team_row(team) for team in await contacts.list_support_teams(session=session)])
    return 0


async def run_teams_set(session: AsyncSession, args: argparse.Namespace) -> int:
    try:
        saved = await contacts.set_support_team(
            session=session,
            audience=args.audience,
            name=args.name,
            email=args.email,
            chat_channel=args.chat_channel,
            timezone=args.timezone,
        )
    except contacts.UnknownTeam as err:
        teams = ", ".join(audience.value for audience in contacts.TEAM_AUDIENCES)
        print(f"escalator teams set: {err}; the teams are {teams}.", file=sys.stderr)
        return 1
    print_table(TEAM_COLUMNS, [team_row(saved)])
    return 0


@contextlib.asynccontextmanager
async def migrated_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on ESCALATOR_DATABASE_URL, with the schema brought up to date first."""
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def run_catalog_command(settings: Settings, args: argparse.Namespace) -> int:
    run: CatalogCommand = args.run
    async with migrated_session(settings) as session:
        try:
            return await run(session, args)
        except catalog.CatalogRefused as err:
            print(f"escalator {args.command} {args.action}: {err.detail} (rule: {err.rule})", file=sys.stderr)
            return 2


def run_admin_command(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings)
    return asyncio.run(run_catalog_command(settings, args))


def add_commands(subcommands: Any) -> None:
    for add_parser in (
        add_keys_parser,
        add_customers_parser,
        add_partners_parser,
        add_contacts_parser,
        add_teams_parser,
    ):
        add_parser(subcommands).set_defaults(main=run_admin_command)
