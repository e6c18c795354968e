"""`escalator`: the project's processes, one subcommand each.

- escalator up        dev server + migrations + demo catalog + worker + API, together
- escalator worker    only the worker, against ESCALATOR_TEMPORAL_ADDRESS
- escalator api       only the HTTP API
- escalator migrate   bring the read-model schema to the newest revision
- escalator seed      insert the demo catalog
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Generator, Iterator
from datetime import datetime
from typing import Any

import uvicorn

from activities.catalog import seed_demo_catalog
from activities.db import make_engine, make_sessionmaker, migrate
from activities.settings import Settings, get_settings
from worker.devserver import DevServer, DevServerError, ensure_port_free
from worker.worker import connect_client, run_worker
from workflows.entitlement import IntakeRefused, quote_response_deadline
from workflows.models import ProductType, Severity, Tier

log = logging.getLogger("escalator")

API_APP = "api.main:app"
API_STARTUP_TIMEOUT = 30.0

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
        async with make_sessionmaker(engine)() as session:
            await seed_demo_catalog(session=session)
            await session.commit()
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


async def api_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    """Whether uvicorn is listening; False if it stopped or did not start in time."""
    try:
        async with asyncio.timeout(API_STARTUP_TIMEOUT):
            while not server.started:
                if serving.done():
                    return False
                await asyncio.sleep(0.05)
    except TimeoutError:
        return False
    return True


def print_banner(settings: Settings, server: DevServer) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    print(
        "\nEscalator is up. Ctrl-C stops it; open tickets resume on the next `make up`.\n"
        f"  API docs     {api}/docs\n"
        f"  Temporal UI  {server.ui_url}\n"
        f"  Temporal     {server.address} (namespace {server.namespace}, "
        f"task queue {settings.task_queue})\n"
        f"  Data         {settings.data_dir}/ (temporal.db, temporal.log)\n"
        "\nFile a ticket:\n"
        f"  curl -s -X POST {api}/tickets -H 'content-type: application/json' "
        f"-d '{SAMPLE_TICKET}'\n",
        flush=True,
    )


def dev_server_for(settings: Settings) -> DevServer:
    host, _, port = settings.temporal_address.rpartition(":")
    return DevServer(
        db_filename=settings.data_dir / "temporal.db",
        ip=host or "127.0.0.1",
        port=int(port),
        ui_port=settings.temporal_ui_port,
        namespace=settings.temporal_namespace,
    )


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
            worker_stop = asyncio.Event()
            worker = asyncio.create_task(run_worker(client, settings, stop=worker_stop))
            api_stop = asyncio.Event()
            uvicorn_server = api_server(settings)
            api = asyncio.create_task(serve_api_until_stopped(uvicorn_server, api_stop))
            if await api_started(uvicorn_server, api):
                print_banner(settings, server)
            waiting = asyncio.create_task(stop.wait())
            try:
                # A crash of either process stops the whole stack too.
                await asyncio.wait({waiting, worker, api}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
                print("\nStopping: API, worker, Temporal dev server ...", flush=True)
                # API first, so no request reaches a stopped worker; then the worker.
                api_stop.set()
                await asyncio.gather(api, return_exceptions=True)
                worker_stop.set()
                await asyncio.gather(worker, return_exceptions=True)
            # Surface a crash (after the orderly stop) as the exit status.
            for task in (api, worker):
                task.result()
        # Leaving the block stopped the dev server.


async def worker_only(settings: Settings) -> None:
    await migrate_database(settings)
    client = await connect_client(settings)
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
    "seed": (seed_database, "insert the demo customers, partner and contracts"),
}

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "due":
        return run_due(args)
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command, _ = COMMANDS[args.command]
    try:
        asyncio.run(command(settings))
    except (DevServerError, ApiStartupError) as err:
        print(f"escalator {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
