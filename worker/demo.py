"""What `escalator up` seeds and prints for a person trying the stack: the demo catalog, the
demo API keys (only where they cannot open a real database), and the banner.

The demo keys' secrets are in the README for anyone to read. `escalator up` therefore makes
them only in its embedded default database (the SQLite file in the data dir), or when asked to
with `--demo`; against any other ESCALATOR_DATABASE_URL it says why it made none.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from runtime.settings import Settings
from runtime.telemetry import worker_metrics_address
from store.demo_catalog import seed_demo_catalog
from store.keys import DEMO_KEYS, seed_demo_keys
from worker.devserver import DevServer
from workflows.enums import Role
from workflows.models import Principal

EMBEDDED_DATABASE = "escalator.db"
SAMPLE_AUTHORIZATION = "authorization: Bearer dev-support"
SAMPLE_TICKET = (
    '{"customer_id":"acme","title":"Login down","description":"SSO returns 500 for every user",'
    '"severity":1,"product":"identity","channel":"on_call","category":"incident"}'
)


def is_embedded_database(settings: Settings) -> bool:
    """Whether the read model is `escalator up`'s own SQLite file: the default URL, or an SQLite
    file named escalator.db in the data dir."""
    default = Settings.model_fields["database_url"].default
    if settings.database_url == default:
        return True
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return False
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    return Path(url.database).resolve() == (settings.data_dir / EMBEDDED_DATABASE).resolve()


def shown_url(database_url: str) -> str:
    """The database URL without its password, for a message."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unparsable URL)"


def demo_keys_refusal(settings: Settings, *, demo: bool) -> str | None:
    """Why `escalator up` makes no demo keys in this database; None where it makes them."""
    if demo or is_embedded_database(settings):
        return None
    return (
        f"Not creating the demo API keys: ESCALATOR_DATABASE_URL is {shown_url(settings.database_url)}, "
        f"not the embedded {settings.data_dir / EMBEDDED_DATABASE}, and their secrets are public "
        "(the README lists them). Make keys with `escalator keys create`, or start with "
        "`escalator up --demo` if this database is only for trying Escalator."
    )


async def seed_for_up(*, session: AsyncSession, settings: Settings, demo: bool) -> str | None:
    """The demo catalog, and the demo keys where they belong; returns why the keys were not
    made, or None if they were."""
    await seed_demo_catalog(session=session)
    refusal = demo_keys_refusal(settings, demo=demo)
    if refusal is None:
        # After the catalog: the demo keys belong to its partner and customer.
        await seed_demo_keys(session=session)
    return refusal


def describe_principal(principal: Principal) -> str:
    match principal.role:
        case Role.ADMIN:
            return "admin: everything, including customers, partners, contracts and API keys"
        case Role.SUPPORT:
            return f"support engineer, Level {principal.level}"
        case Role.PARTNER:
            return f"partner {principal.partner_id}: its customers' tickets, first line"
        case Role.CUSTOMER:
            return f"customer {principal.customer_id}: its own tickets"
    return principal.role.value


def demo_keys_text() -> str:
    width = max(len(secret) for secret in DEMO_KEYS)
    return "".join(
        f"  {secret:<{width}}  {describe_principal(principal)}\n" for secret, principal in DEMO_KEYS.items()
    )


def worker_metrics_line(settings: Settings) -> str:
    address = worker_metrics_address(settings)
    return f", worker http://{address}/metrics" if address else ""


def print_banner(settings: Settings, server: DevServer, *, keys_refusal: str | None = None) -> None:
    """What is up and where; the demo keys, or why there are none."""
    api = f"http://{settings.api_host}:{settings.api_port}"
    if keys_refusal is None:
        keys = (
            "\nDemo API keys (send `Authorization: Bearer <key>`; for this machine only):\n"
            f"{demo_keys_text()}"
        )
        authorization = SAMPLE_AUTHORIZATION
    else:
        keys = f"\nNo demo API keys. {keys_refusal}\n"
        authorization = "authorization: Bearer <your key>"
    print(
        "\nEscalator is up. Ctrl-C stops it; open tickets resume on the next `make up`.\n"
        f"  API docs     {api}/docs\n"
        f"  Metrics      {api}/metrics{worker_metrics_line(settings)}\n"
        f"  Temporal UI  {server.ui_url}\n"
        f"  Temporal     {server.address} (namespace {server.namespace}, "
        f"task queue {settings.task_queue})\n"
        f"  Data         {settings.data_dir}/ (temporal.db, temporal.log)\n"
        f"{keys}"
        "\nFile a ticket:\n"
        f"  curl -s -X POST {api}/tickets -H '{authorization}' "
        f"-H 'content-type: application/json' -d '{SAMPLE_TICKET}'\n",
        flush=True,
    )
