"""`escalator up`: the Temporal dev server, migrations and the demo data, then `escalator worker`
and `escalator api` as child processes (one GIL each), kept running until Ctrl-C or SIGTERM.

A child that dies is started again after a backoff (ESCALATOR_UP_RESTART_BACKOFF_SECONDS,
doubling), with a log line that says why; the other child runs on meanwhile, so the API keeps
answering while the worker comes back. More than ESCALATOR_UP_RESTART_LIMIT restarts of one
child within ESCALATOR_UP_RESTART_WINDOW_SECONDS is a crash loop: the stack stops and says so.
Nothing outlives `escalator up`: it stops its children in order (the API first), and on Linux
they and the dev server die with it even when it is killed outright.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from runtime.settings import Settings
from runtime.temporal import connect_client
from store.db import make_engine, make_sessionmaker, migrate
from worker.demo import print_banner, seed_for_up
from worker.devserver import DevServer, ensure_port_free
from worker.serve import PARENT_PID_VARIABLE, CommandFailed, Stop, run_command, stop_on_signals

log = logging.getLogger("escalator")

API_STARTUP_TIMEOUT = 60.0
# How long `escalator up` waits for a child to exit after SIGTERM before it kills it. The
# worker first lets in-flight activities finish (worker.worker's graceful shutdown, 10 s).
API_STOP_TIMEOUT = 15.0
WORKER_STOP_TIMEOUT = 30.0
# The longest wait before a restart, however often a child died.
MAX_RESTART_BACKOFF = 30.0
# Runs the dev server binary as a child that dies with `escalator up` (Linux): asks for
# SIGTERM on the parent's death, exits if the parent is already gone, then execs the binary
# (the request survives exec). argv: parent pid, then the command.
EXEC_WITH_PARENT_DEATH = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


class ChildExited(CommandFailed):
    """A process of the stack stopped by itself, and could not be kept running."""


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


# --- Children, restarted when they die -------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    """At most `limit` restarts of one child within `window` seconds; the n-th restart within
    the window waits `backoff` * 2**(n-1) seconds first, at most MAX_RESTART_BACKOFF."""

    limit: int
    window: float
    backoff: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartPolicy:
        return cls(
            limit=settings.up_restart_limit,
            window=settings.up_restart_window_seconds,
            backoff=settings.up_restart_backoff_seconds,
        )

    def delay(self, restart: int) -> float:
        return min(self.backoff * 2 ** (restart - 1), MAX_RESTART_BACKOFF)


def exit_status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"status {returncode} ({signal.Signals(-returncode).name})"
    return f"status {returncode}"


@dataclass
class Child:
    """One process of the stack: `argv` with `env`, started, restarted, stopped."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout: float
    process: asyncio.subprocess.Process | None = None
    # When it was restarted (time.monotonic), the recent ones.
    restarts: deque[float] = field(default_factory=deque)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        # Its own session, so that Ctrl-C reaches only `escalator up`, which stops the children
        # in order.
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
        )

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within its stop timeout."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def restarts_within(self, window: float, now: float) -> int:
        while self.restarts and now - self.restarts[0] > window:
            self.restarts.popleft()
        return len(self.restarts)


def escalator_child(name: str, command: str, env: dict[str, str], stop_timeout: float) -> Child:
    return Child(name, [sys.executable, "-m", "worker", command], env, stop_timeout)


async def exited_or_stopped(process: asyncio.subprocess.Process, stop: asyncio.Event) -> bool:
    """Wait until the process exits or `stop` is set; True if it exited."""
    exiting = asyncio.create_task(process.wait())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({exiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exiting.cancel()
        stopping.cancel()
    return process.returncode is not None and not stop.is_set()


def crash_loop_failure(name: str, status: str, exits: int, policy: RestartPolicy) -> str:
    if policy.limit == 0:
        return (
            f"the {name} exited with {status} and restarts are off "
            "(ESCALATOR_UP_RESTART_LIMIT=0), so the stack was stopped"
        )
    return (
        f"the {name} exited {exits} times within {policy.window:.0f} s (last with {status}), "
        "so the stack was stopped"
    )


async def keep_running(child: Child, stop: Stop, policy: RestartPolicy) -> None:
    """Start `child` again each time it dies, after a backoff, until `stop` is set; a crash
    loop sets `stop` with the failure."""
    while child.process is not None and await exited_or_stopped(child.process, stop):
        status = exit_status(child.process.returncode)
        restart = child.restarts_within(policy.window, time.monotonic()) + 1
        if restart > policy.limit:
            log.error(
                "The %s exited with %s, %d times within %.0f s: a crash loop; stopping the stack.",
                child.name,
                status,
                restart,
                policy.window,
            )
            stop.fail(crash_loop_failure(child.name, status, restart, policy))
            return
        delay = policy.delay(restart)
        log.warning(
            "The %s exited with %s; restarting it in %.1f s (restart %d of %d allowed within %.0f s).",
            child.name,
            status,
            delay,
            restart,
            policy.limit,
            policy.window,
        )
        child.restarts.append(time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        await child.start()
        assert child.process is not None
        log.warning("Restarted the %s: pid %d.", child.name, child.process.pid)


async def supervise(children: list[Child], stop: Stop, policy: RestartPolicy) -> None:
    """Keep every child running until `stop` is set (by a signal or a crash loop)."""
    async with asyncio.TaskGroup() as group:
        for child in children:
            group.create_task(keep_running(child, stop, policy), name=f"keep-{child.name}")


# --- Up ---------------------------------------------------------------------------------------


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
    settings: Settings, client: Client, api: Child, worker: Child, stop: asyncio.Event
) -> bool:
    """Wait until the API answers /readyz and the worker polls the task queue.

    False if a stop was asked for first; ChildExited if a child died (while starting, a death
    is a fault to report, not to retry); TimeoutError if the stack did not come up within
    API_STARTUP_TIMEOUT.
    """
    url = f"http://{settings.api_host}:{settings.api_port}/readyz"
    api_up = worker_up = False
    async with asyncio.timeout(API_STARTUP_TIMEOUT), httpx.AsyncClient(timeout=2.0) as http:
        while not (api_up and worker_up):
            if stop.is_set():
                return False
            for child in (api, worker):
                if not child.running:
                    assert child.process is not None
                    raise ChildExited(
                        f"the {child.name} exited with {exit_status(child.process.returncode)} while starting"
                    )
            if not api_up:
                with contextlib.suppress(httpx.HTTPError):
                    api_up = (await http.get(url)).status_code == 200
            if not worker_up:
                assert worker.process is not None
                worker_up = worker.process.pid in await polling_worker_pids(client, settings.task_queue)
            if not (api_up and worker_up):
                await asyncio.sleep(0.1)
    return True


async def seed_demo(settings: Settings, *, demo: bool) -> str | None:
    """Migrate, and seed the demo data; why no demo keys were made, or None."""
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            refusal = await seed_for_up(session=session, settings=settings, demo=demo)
    finally:
        await engine.dispose()
    if refusal is not None:
        log.warning("%s", refusal)
    return refusal


async def run_stack(
    settings: Settings, server: DevServer, client: Client, stop: Stop, *, keys_refusal: str | None
) -> None:
    """The worker and the API as children, supervised until `stop`, then stopped in order."""
    env = child_environment(settings)
    # The worker and the API in processes of their own: one GIL each (DESIGN.md 9).
    worker = escalator_child("worker", "worker", env, WORKER_STOP_TIMEOUT)
    api = escalator_child("API", "api", env, API_STOP_TIMEOUT)
    try:
        await worker.start()
        await api.start()
        try:
            if not await stack_ready(settings, client, api, worker, stop):
                return
        except TimeoutError:
            raise ChildExited(
                f"the stack did not come up within {API_STARTUP_TIMEOUT:.0f} s "
                "(the API must answer /readyz and the worker poll its task queue)"
            ) from None
        print_banner(settings, server, keys_refusal=keys_refusal)
        await supervise([worker, api], stop, RestartPolicy.from_settings(settings))
    finally:
        cause = f" {stop.cause}" if stop.cause else ""
        print(f"\nStopping{cause}: API, worker, Temporal dev server ...", flush=True)
        # API first, so no request reaches a stopped worker; then the worker.
        await api.stop()
        await worker.stop()
    if stop.failure is not None:
        raise ChildExited(stop.failure)


async def up(settings: Settings, *, demo: bool = False) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Fail before starting anything if the API port is taken.
    ensure_port_free(settings.api_host, settings.api_port, what="The API")
    with stop_on_signals() as stop:
        async with dev_server_for(settings) as server:
            keys_refusal = await seed_demo(settings, demo=demo)
            client = await connect_client(settings)
            if not stop.is_set():
                await run_stack(settings, server, client, stop, keys_refusal=keys_refusal)
        # Leaving the block stopped the dev server.


def run_up_command(args: argparse.Namespace) -> int:
    return run_command("up", functools.partial(up, demo=args.demo))


def add_commands(subcommands: Any) -> None:
    help_text = "run the whole stack locally: Temporal dev server, worker and API"
    parser = subcommands.add_parser("up", help=help_text, description=help_text)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="create the demo API keys even though ESCALATOR_DATABASE_URL is not the embedded "
        "database (their secrets are public: only for a database that is just for trying)",
    )
    parser.set_defaults(main=run_up_command)
