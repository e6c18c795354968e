"""The processes that run on their own: `escalator worker`, `api`, `migrate` and `seed`.

Each of them may also be a child of `escalator up` (worker.supervisor), which it then never
outlives (`die_with_parent`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any

import uvicorn

from runtime.settings import Settings, get_settings
from runtime.telemetry import configure_logging, process_tracer_provider, worker_runtime
from runtime.temporal import connect_client
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from worker.devserver import DevServerError
from worker.worker import run_worker

log = logging.getLogger("escalator")

API_APP = "api.main:app"
# uvloop's event loop and httptools' parser: intake measured in docs/benchmarks.md. The
# environment can pick uvicorn's pure-Python ones ("asyncio", "h11") to compare.
API_LOOP = os.environ.get("ESCALATOR_API_LOOP", "asyncio" if sys.platform == "win32" else "uvloop")
API_HTTP = os.environ.get("ESCALATOR_API_HTTP", "httptools")
# Set by `escalator up` for its children: the pid they must not outlive.
PARENT_PID_VARIABLE = "ESCALATOR_PARENT_PID"

Command = Callable[[Settings], Coroutine[Any, Any, None]]


class CommandFailed(RuntimeError):
    """A command stopped for a reason it states in a sentence: exit status 1, no traceback."""


class ApiStartupError(CommandFailed):
    """Uvicorn could not load or start the app (it has logged why)."""


class Stop(asyncio.Event):
    """Set when the process should stop, remembering why: a signal, or a failure."""

    def __init__(self) -> None:
        super().__init__()
        self.cause = ""
        self.failure: str | None = None

    def stop(self, cause: str) -> None:
        if not self.is_set():
            self.cause = cause
            self.set()

    def fail(self, failure: str) -> None:
        """Stop because something broke; `failure` says what, as the exit message."""
        if not self.is_set():
            self.failure = failure
        self.stop("after a crash loop")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """A Stop set by SIGINT or SIGTERM, for the duration of the block."""
    loop = asyncio.get_running_loop()
    stop = Stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.stop, f"on {sig.name}")
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
    """`escalator seed`: the demo catalog and the demo keys, into whatever database it is given
    (asked for by name; `escalator up` decides for itself, worker.demo)."""
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            await seed_demo_catalog(session=session)
            # After the catalog: the demo keys belong to its partner and customer.
            await seed_demo_keys(session=session)
    finally:
        await engine.dispose()


# --- The worker and the API ------------------------------------------------------------------


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
        # uvicorn's own lines (access log included) go through the root handler that
        # configure_logging set up, in either format: in text, its escaping and indented
        # tracebacks then cover uvicorn's "Exception in ASGI application" too, whose message
        # can carry user text (uvicorn's own formatters write it as it is).
        log_config=None,
        loop=API_LOOP,
        http=API_HTTP,
    )
    return EmbeddedApiServer(config)


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


# --- Running a command ----------------------------------------------------------------------


def run_command(
    name: str, command: Command, *, loop_factory: Callable[[], Any] | None = None, child: bool = False
) -> int:
    """Run `command` with the process's settings and logging; its exit status. A `child` may be
    one of `escalator up`'s, and then never outlives it."""
    settings = get_settings()
    configure_logging(settings)
    if child:
        die_with_parent()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(command(settings))
    except (DevServerError, CommandFailed) as err:
        print(f"escalator {name}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def run_worker_command(args: argparse.Namespace) -> int:
    return run_command("worker", worker_only, child=True)


def run_api_command(args: argparse.Namespace) -> int:
    # The API's event loop is uvicorn's choice (API_LOOP), made here since the CLI, not
    # uvicorn.run, creates the loop. log_config=None: this Config only picks the loop;
    # api_server's sets up uvicorn's logs.
    loop_factory = uvicorn.Config(API_APP, loop=API_LOOP, log_config=None).get_loop_factory()
    return run_command("api", api_only, loop_factory=loop_factory, child=True)


def run_migrate_command(args: argparse.Namespace) -> int:
    return run_command("migrate", migrate_database)


def run_seed_command(args: argparse.Namespace) -> int:
    return run_command("seed", seed_database)


def add_commands(subcommands: Any) -> None:
    for name, main, help_text in (
        ("worker", run_worker_command, "run the worker (migrates the database first)"),
        ("api", run_api_command, "run the HTTP API"),
        ("migrate", run_migrate_command, "bring the database schema to the newest revision"),
        (
            "seed",
            run_seed_command,
            "insert the demo customers, partner, contracts and API keys (migrates first)",
        ),
    ):
        subcommands.add_parser(name, help=help_text, description=help_text).set_defaults(main=main)
