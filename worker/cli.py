"""`escalator`: the project's processes, one subcommand each.

- escalator up        dev server + migrations + demo catalog, then `escalator worker` and
                      `escalator api` as child processes (one GIL each), stopped in order
- escalator worker    only the worker, against ESCALATOR_TEMPORAL_ADDRESS
- escalator api       only the HTTP API
- escalator migrate   bring the read-model schema to the newest revision
- escalator seed      insert the demo catalog and the demo API keys
- escalator keys      create, list and revoke API keys
- escalator customers onboard customers, edit contracts, deactivate customers
- escalator partners  register partners
- escalator contacts  list and replace a customer's or a partner's contacts
- escalator teams     list and set up ConnectSoft's support teams (who each level is)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from runtime.settings import Settings, get_settings
from runtime.telemetry import (
    configure_logging,
    process_tracer_provider,
    worker_metrics_address,
    worker_runtime,
)
from runtime.temporal import connect_client
from store import catalog, contacts, keys
from store.catalog import seed_demo_catalog
from store.db import make_engine, make_sessionmaker, migrate
from store.keys import DEMO_KEYS, seed_demo_keys
from worker.devserver import DevServer, DevServerError, ensure_port_free
from worker.worker import run_worker
from workflows.entitlement import IntakeRefused, quote_response_deadline
from workflows.models import Principal, ProductType, Role, Severity, Tier

log = logging.getLogger("escalator")

API_APP = "api.main:app"
API_STARTUP_TIMEOUT = 60.0
# uvloop's event loop and httptools' parser: intake measured in docs/benchmarks.md. The
# environment can pick uvicorn's pure-Python ones ("asyncio", "h11") to compare.
API_LOOP = os.environ.get("ESCALATOR_API_LOOP", "asyncio" if sys.platform == "win32" else "uvloop")
API_HTTP = os.environ.get("ESCALATOR_API_HTTP", "httptools")
# How long `escalator up` waits for a child to exit after SIGTERM before it kills it. The
# worker first lets in-flight activities finish (worker.worker's graceful shutdown, 10 s).
API_STOP_TIMEOUT = 15.0
WORKER_STOP_TIMEOUT = 30.0
# Set by `escalator up` for its children: the pid they must not outlive.
PARENT_PID_VARIABLE = "ESCALATOR_PARENT_PID"
# Runs the dev server binary as a child that dies with `escalator up` (Linux): asks for
# SIGTERM on the parent's death, exits if the parent is already gone, then execs the binary
# (the request survives exec). argv: parent pid, then the command.
EXEC_WITH_PARENT_DEATH = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)

SAMPLE_AUTHORIZATION = "authorization: Bearer dev-support"
SAMPLE_TICKET = (
    '{"customer_id":"acme","title":"Login down","description":"SSO returns 500 for every user",'
    '"severity":1,"product":"identity","channel":"on_call","category":"incident"}'
)


class EmbeddedApiServer(uvicorn.Server):
    """Uvicorn without its own signal handlers: the CLI decides the shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(settings: Settings) -> EmbeddedApiServer:
    config = uvicorn.Config(
        API_APP,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # JSON logs: uvicorn's own lines (access log included) go through the root handler
        # that configure_logging set up, instead of uvicorn's text formatters.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        loop=API_LOOP,
        http=API_HTTP,
    )
    return EmbeddedApiServer(config)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM, for the duration of the block."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# --- Database -------------------------------------------------------------------------------


async def migrate_database(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def seed_database(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            await seed_demo_catalog(session=session)
            # After the catalog: the demo keys belong to its partner and customer.
            await seed_demo_keys(session=session)
    finally:
        await engine.dispose()


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


# --- Processes ------------------------------------------------------------------------------


class ApiStartupError(RuntimeError):
    """Uvicorn could not load or start the app (it has logged why)."""


async def serve_api(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as exit_:
        # Uvicorn exits the process when the app cannot start; stop the stack in order instead.
        raise ApiStartupError(f"the API could not start (uvicorn exit status {exit_.code})") from None


async def serve_api_until_stopped(server: uvicorn.Server, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(serve_api(server), name="api")
    stopping = asyncio.create_task(stop.wait(), name="api-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
    await serving


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


def print_banner(settings: Settings, server: DevServer) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        "\nEscalator is up. Ctrl-C stops it; open tickets resume on the next `make up`.\n"
        f"  API docs     {api}/docs\n"
        f"  Metrics      {api}/metrics{worker_metrics_line(settings)}\n"
        f"  Temporal UI  {server.ui_url}\n"
        f"  Temporal     {server.address} (namespace {server.namespace}, "
        f"task queue {settings.task_queue})\n"
        f"  Data         {settings.data_dir}/ (temporal.db, temporal.log)\n"
        "\nDemo API keys (send `Authorization: Bearer <key>`; for this machine only):\n"
        f"{demo_keys_text()}"
        "\nFile a ticket:\n"
        f"  curl -s -X POST {api}/tickets -H '{SAMPLE_AUTHORIZATION}' "
        f"-H 'content-type: application/json' -d '{SAMPLE_TICKET}'\n",
        flush=True,
    )


def worker_metrics_line(settings: Settings) -> str:
    address = worker_metrics_address(settings)
    return f", worker http://{address}/metrics" if address else ""


class SupervisedDevServer(DevServer):
    """The dev server, which on Linux also stops if `escalator up` is killed outright."""

    def command(self) -> list[str]:
        command = super().command()
        if not sys.platform.startswith("linux"):
            return command
        return [sys.executable, "-c", EXEC_WITH_PARENT_DEATH, str(os.getpid()), *command]


def dev_server_for(settings: Settings) -> DevServer:
    host, _, port = settings.temporal_address.rpartition(":")
    return SupervisedDevServer(
        db_filename=settings.data_dir / "temporal.db",
        ip=host or "127.0.0.1",
        port=int(port),
        ui_port=settings.temporal_ui_port,
        namespace=settings.temporal_namespace,
    )


class ChildExited(RuntimeError):
    """A process of the stack stopped by itself; `escalator up` stopped the rest."""


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting spelled out, so the children read the
    same settings whatever their source (environment, .env, defaults)."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        variable = f"ESCALATOR_{name.upper()}"
        if value is None:
            env.pop(variable, None)
        else:
            env[variable] = environment_value(value)
    env[PARENT_PID_VARIABLE] = str(os.getpid())
    return env


def environment_value(value: Any) -> str:
    """A setting as its environment variable spells it: lists and dicts as JSON (as
    pydantic-settings parses them), secrets in clear (the child needs the real value)."""

    def revealed(item: Any) -> Any:
        if isinstance(item, SecretStr):
            return item.get_secret_value()
        if isinstance(item, dict):
            return {key: revealed(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [revealed(inner) for inner in item]
        return item

    plain = revealed(value)
    return json.dumps(plain) if isinstance(plain, dict | list) else str(plain)


def die_with_parent() -> None:
    """In a child of `escalator up`: never outlive it, even if it is killed with SIGKILL.

    On Linux the kernel sends SIGTERM when the parent dies (PR_SET_PDEATHSIG), which stops
    this process the ordinary way; if the parent is already gone, exit at once. Elsewhere
    only the orderly stop of `escalator up` stops the children.
    """
    parent = os.environ.pop(PARENT_PID_VARIABLE, "")
    if not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
    if os.getppid() != int(parent):
        log.warning("escalator up (pid %s) is gone; not starting", parent)
        sys.exit(1)


async def spawn_child(command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`escalator <command>` as a child process, in its own session so that Ctrl-C reaches
    only `escalator up`, which then stops the children in order."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def stop_child(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def polling_worker_pids(client: Client, task_queue: str) -> set[int]:
    """The pids of the workers polling `task_queue` for workflow tasks (identity `pid@host`)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    heads = (poller.identity.split("@", 1)[0] for poller in described.pollers)
    return {int(head) for head in heads if head.isdigit()}


async def stack_ready(
    settings: Settings,
    client: Client,
    api: asyncio.subprocess.Process,
    worker: asyncio.subprocess.Process,
    stop: asyncio.Event,
) -> bool:
    """Wait until the API answers /readyz and the worker polls the task queue.

    False if a stop was asked for first; ChildExited if a child died; TimeoutError if the
    stack did not come up within API_STARTUP_TIMEOUT.
    """
    url = f"http://{settings.api_host}:{settings.api_port}/readyz"
    api_up = worker_up = False
    async with asyncio.timeout(API_STARTUP_TIMEOUT), httpx.AsyncClient(timeout=2.0) as http:
        while not (api_up and worker_up):
            if stop.is_set():
                return False
            for name, process in (("API", api), ("worker", worker)):
                if process.returncode is not None:
                    raise ChildExited(f"the {name} exited with status {process.returncode} while starting")
            if not api_up:
                with contextlib.suppress(httpx.HTTPError):
                    api_up = (await http.get(url)).status_code == 200
            if not worker_up:
                worker_up = worker.pid in await polling_worker_pids(client, settings.task_queue)
            if not (api_up and worker_up):
                await asyncio.sleep(0.1)
    return True


async def up(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Fail before starting anything if the API port is taken.
    ensure_port_free(settings.api_host, settings.api_port, what="The API")
    with stop_on_signals() as stop:
        async with dev_server_for(settings) as server:
            await migrate_database(settings)
            await seed_database(settings)
            client = await connect_client(settings)
            if stop.is_set():
                return
            env = child_environment(settings)
            # The worker and the API in processes of their own: one GIL each (DESIGN.md 9).
            worker = await spawn_child("worker", env)
            api: asyncio.subprocess.Process | None = None
            waiting: set[asyncio.Task[Any]] = set()
            try:
                api = await spawn_child("api", env)
                try:
                    if await stack_ready(settings, client, api, worker, stop):
                        print_banner(settings, server)
                except TimeoutError:
                    raise ChildExited(
                        f"the stack did not come up within {API_STARTUP_TIMEOUT:.0f} s "
                        "(the API must answer /readyz and the worker poll its task queue)"
                    ) from None
                waiting = {
                    asyncio.create_task(stop.wait(), name="stop"),
                    asyncio.create_task(api.wait(), name="api"),
                    asyncio.create_task(worker.wait(), name="worker"),
                }
                # A crash of either process stops the whole stack too.
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiting:
                    task.cancel()
                print("\nStopping: API, worker, Temporal dev server ...", flush=True)
                # API first, so no request reaches a stopped worker; then the worker.
                crashed = [
                    f"the {name} exited with status {process.returncode}"
                    for name, process in (("API", api), ("worker", worker))
                    if process is not None and process.returncode is not None and not stop.is_set()
                ]
                if api is not None:
                    await stop_child(api, API_STOP_TIMEOUT)
                await stop_child(worker, WORKER_STOP_TIMEOUT)
            if crashed:
                raise ChildExited("; ".join(crashed) + ", so the stack was stopped")
        # Leaving the block stopped the dev server.


async def worker_only(settings: Settings) -> None:
    await migrate_database(settings)
    # The SDK's metrics on their own port, and traces when ESCALATOR_TRACING is on.
    client = await connect_client(
        settings,
        runtime=worker_runtime(settings),
        tracer_provider=process_tracer_provider(settings, service_name="escalator-worker"),
    )
    with stop_on_signals() as stop:
        await run_worker(client, settings, stop=stop)


async def api_only(settings: Settings) -> None:
    with stop_on_signals() as stop:
        await serve_api_until_stopped(api_server(settings), stop)


# --- Command line ---------------------------------------------------------------------------

Command = Callable[[Settings], Coroutine[Any, Any, None]]

COMMANDS: dict[str, tuple[Command, str]] = {
    "up": (up, "run the whole stack locally: Temporal dev server, worker and API"),
    "worker": (worker_only, "run the worker (migrates the database first)"),
    "api": (api_only, "run the HTTP API"),
    "migrate": (migrate_database, "bring the database schema to the newest revision"),
    "seed": (seed_database, "insert the demo customers, partner, contracts and API keys (migrates first)"),
}

# --- `keys`, `customers`, `partners` ------------------------------------------------------------

CatalogCommand = Callable[[AsyncSession, argparse.Namespace], Awaitable[int]]


def optional(value: str) -> str | None:
    """An optional text option: an empty string clears it."""
    return value or None


def add_keys_parser(subcommands: Any) -> None:
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


CONTRACT_OPTIONS = (
    "tier",
    "product_type",
    "timezone",
    "country",
    "subdivision",
    "coverage_24x7",
    "partner_id",
    "project",
)


def add_customers_parser(subcommands: Any) -> None:
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


def add_partners_parser(subcommands: Any) -> None:
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
    changes = {name: getattr(args, name) for name in CONTRACT_OPTIONS if hasattr(args, name)}
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


def partner_row(partner: catalog.CatalogPartner) -> tuple[object, ...]:
    return (
        partner.id,
        partner.name,
        partner.connectsoft_tier.value,
        "yes" if partner.coverage_24x7 else "no",
    )


async def run_partners_add(session: AsyncSession, args: argparse.Namespace) -> int:
    created = await catalog.create_partner(
        session=session,
        partner_id=args.partner_id,
        name=args.name,
        connectsoft_tier=args.tier,
        coverage_24x7=args.coverage_24x7,
    )
    print_table(PARTNER_COLUMNS, [partner_row(created)])
    return 0


async def run_partners_list(session: AsyncSession, args: argparse.Namespace) -> int:
    found = await catalog.list_partners(session=session)
    print_table(PARTNER_COLUMNS, [partner_row(p) for p in found])
    return 0


def add_contacts_parser(subcommands: Any) -> None:
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


def add_teams_parser(subcommands: Any) -> None:
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


async def run_catalog_command(settings: Settings, args: argparse.Namespace) -> int:
    run: CatalogCommand = args.run
    async with migrated_session(settings) as session:
        try:
            return await run(session, args)
        except catalog.CatalogRefused as err:
            print(f"escalator {args.command} {args.action}: {err.detail} (rule: {err.rule})", file=sys.stderr)
            return 2


CATALOG_COMMANDS = ("keys", "customers", "partners", "contacts", "teams")


# --- `due` ----------------------------------------------------------------------------------


def add_due_parser(subcommands: Any) -> None:
    due = subcommands.add_parser(
        "due",
        help="when is a first response due? (same answer as GET /sla/deadline)",
        description="Quote the first-response deadline under the default policy.",
    )
    due.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    due.add_argument("--severity", required=True, type=int, choices=[1, 2, 3, 4])
    due.add_argument("--product", default=ProductType.PLATFORM.value, choices=[p.value for p in ProductType])
    due.add_argument(
        "--submitted-at",
        required=True,
        type=datetime.fromisoformat,
        help="ISO 8601, e.g. 2026-11-27T16:00; local to --timezone when it has no offset",
    )
    due.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Berlin")
    due.add_argument("--country", default=None, help="ISO country code for public holidays, e.g. DE")
    due.add_argument("--subdivision", default=None, help="ISO 3166-2 for regional holidays, e.g. GB-ENG")
    due.add_argument("--coverage-24x7", action="store_true", help="the Premium 24/7 option")


def run_due(args: argparse.Namespace) -> int:
    try:
        quote = quote_response_deadline(
            tier=Tier(args.tier),
            severity=Severity(args.severity),
            product_type=ProductType(args.product),
            submitted_at=args.submitted_at,
            timezone=args.timezone,
            country=args.country,
            subdivision=args.subdivision,
            coverage_24x7=args.coverage_24x7,
        )
    except IntakeRefused as err:
        print(f"escalator due: {err.message}", file=sys.stderr)
        return 2
    print(quote.model_dump_json(indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escalator",
        description="Support-ticket escalation orchestrator on Temporal.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        subcommands.add_parser(name, help=help_text, description=help_text)
    add_due_parser(subcommands)
    add_keys_parser(subcommands)
    add_customers_parser(subcommands)
    add_partners_parser(subcommands)
    add_contacts_parser(subcommands)
    add_teams_parser(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "due":
        return run_due(args)
    settings = get_settings()
    configure_logging(settings)
    if args.command in CATALOG_COMMANDS:
        return asyncio.run(run_catalog_command(settings, args))
    command, _ = COMMANDS[args.command]
    if args.command in ("worker", "api"):
        die_with_parent()
    # The API's event loop is uvicorn's choice (API_LOOP), made here since the CLI, not
    # uvicorn.run, creates the loop; the other commands run on asyncio's own.
    loop_factory = (
        # log_config=None: this Config only picks the loop; api_server's sets up uvicorn's logs.
        uvicorn.Config(API_APP, loop=API_LOOP, log_config=None).get_loop_factory()
        if args.command == "api"
        else None
    )
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(command(settings))
    except (DevServerError, ApiStartupError, ChildExited) as err:
        print(f"escalator {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
