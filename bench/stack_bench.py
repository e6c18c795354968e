"""The real stack, as users run it: `escalator up` on a temporary data dir and free ports.

`escalator up` starts the Temporal dev server (SQLite file, WAL), the worker and the API; this
benchmark drives it from outside over loopback, the way a client would, and measures each
figure of issue 7 against a baseline taken in the same run on the same dev server:

- intake: `POST /tickets` (demo support key, demo customers, Sev 2-4) against raw
  `client.start_workflow` of a no-op workflow (bench/noop_workflow.py) served by a separate
  no-op worker process with the same tuning, in ABBA order (raw, API, API, raw), each phase
  N requests with C in flight: throughput and p99 latency;
- processing: tickets fully processed (first sync in the read model) per second, against the
  intake rate and against the no-op workflows' first activity per second;
- memory: the worker process's RSS growth per open (cached) ticket, against the no-op worker's
  per open no-op workflow;
- breach lag: a storm of open tickets, most of them with first-response deadlines minutes
  away (a customer onboarded through the admin API with a short response override), each
  breach notification's write time in the read model minus its due time, against a 60 s
  poller computed from the same due times; once with one worker, once with two.

Every process it starts is stopped at the end (and `escalator up`'s children die with it).
Loops are bounded in count and time. Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from bench import storm_parts
from bench.common import Result, percentile
from bench.noop_workflow import NoopWorkflow
from runtime.codec import data_converter
from runtime.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TASK_QUEUE = "tickets"  # Settings' default, which `escalator up` uses
STARTUP_TIMEOUT = 120.0  # seconds for `escalator up` to print its banner
STOP_TIMEOUT = 60.0  # seconds for a process to exit after SIGINT/SIGTERM, then SIGKILL
SETTLE_TIMEOUT = 300.0  # seconds for a phase's workflows to make their first step
POLL_INTERVAL = 0.1
WARMUP = 10  # tickets (and no-op starts) before measuring: imports and caches are not per-ticket

SUPPORT = {"authorization": "Bearer dev-support"}
ADMIN = {"authorization": "Bearer dev-admin"}
# Demo customers (DESIGN.md §8) with a product of their kind; Sev 2-4 by email.
DEMO_PRODUCTS = {
    "acme": "identity",
    "globex": "audit",
    "initech": "config",
    "umbrella": "bespoke",
    "contoso": "partner_solution",
}
STORM_CUSTOMER = "storm"
POLLER_PERIOD = 60.0  # seconds: the cron-style poller the breach lag is compared with


# --- Numbers --------------------------------------------------------------------------------


def poller_lags(due: list[datetime], period: float = POLLER_PERIOD, phases: int = 600) -> list[float]:
    """Lags of a poller that wakes every `period` s, pooled over `phases` evenly spaced phases.

    A poller at phase p notices a deadline d at the first wake-up at or after d, so its lag is
    (p - d) mod period. Pooling over phases is the expectation over a random phase, without
    the luck of one draw. The poller's own work is taken as free.
    """
    lags = []
    for i in range(phases):
        phase = period * i / phases
        for d in due:
            lags.append((phase - d.timestamp()) % period)
    return lags


def rss_of(pid: int) -> int:
    """VmRSS of a process, in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children_of(pid: int) -> list[int]:
    """Direct child processes of `pid`, from /proc/*/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def cmdline_of(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        return [word for word in raw.split("\0") if word]
    return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on now, for a server this process is about to start.

    Taken from below the kernel's ephemeral range, never from it: the Temporal dev server binds
    several ephemeral ports of its own (membership, HTTP) as it starts, and one of them once
    took the UI port picked a moment before ("bind: address already in use"). A port is handed
    out once per process, so two picks in a row never agree.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


# --- Processes ------------------------------------------------------------------------------


@dataclass
class Child:
    """A process this benchmark started, with its output collected in the background."""

    name: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, count: int = 30) -> str:
        return "".join(self.lines[-count:])

    async def stop(self, sig: int = signal.SIGINT) -> int:
        """Signal, wait (bounded), then SIGKILL; returns the exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.reader, 5)
        return self.process.returncode if self.process.returncode is not None else -1


async def spawn(name: str, args: list[str], *, env: dict[str, str], cwd: Path) -> Child:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its own process group: the terminal's Ctrl-C reaches only this benchmark, which
        # then stops its children in order.
        start_new_session=True,
    )
    child = Child(name, process)

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            child.lines.append(raw.decode(errors="replace"))
            if len(child.lines) > 2000:
                del child.lines[:1000]

    child.reader = asyncio.create_task(read(), name=f"read-{name}")
    return child


@dataclass
class Stack:
    """One `escalator up` on a temporary directory, plus any extra processes started against it."""

    root: Path
    env: dict[str, str]
    api_port: int
    temporal_address: str
    up: Child
    client: Client
    database_url: str = ""
    extra: list[Child] = field(default_factory=list)
    pids_seen: set[int] = field(default_factory=set)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def read_model(self) -> Path:
        """The SQLite read model's file (the intake phases read it directly)."""
        return self.root / "escalator.db"

    @property
    def access(self) -> storm_parts.ReadModelAccess:
        """The read model, SQLite or PostgreSQL, from outside the stack."""
        return storm_parts.ReadModelAccess(self.database_url)

    def processes(self) -> dict[str, list[int]]:
        """`escalator up`'s process tree by role: dev server, worker(s), API."""
        tree: dict[str, list[int]] = {"up": [self.up.pid], "temporal": [], "worker": [], "api": []}
        for pid in children_of(self.up.pid):
            args = cmdline_of(pid)
            if any(Path(a).name == "temporal" for a in args[:1]):
                tree["temporal"].append(pid)
            elif args and args[-1] in ("worker", "api"):
                tree[args[-1]].append(pid)
        self.pids_seen.update(pid for pids in tree.values() for pid in pids)
        return tree


def stack_env(
    root: Path, *, api_port: int, temporal_port: int, ui_port: int, database_url: str
) -> dict[str, str]:
    return {
        **os.environ,
        "ESCALATOR_DATA_DIR": str(root),
        "ESCALATOR_DATABASE_URL": database_url,
        "ESCALATOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "ESCALATOR_TEMPORAL_UI_PORT": str(ui_port),
        "ESCALATOR_API_PORT": str(api_port),
        "ESCALATOR_API_HOST": "127.0.0.1",
        "ESCALATOR_LOG_LEVEL": "WARNING",
        "ESCALATOR_TASK_QUEUE": TASK_QUEUE,
        # One key files the whole storm: the per-key write limit (600 a minute) would refuse
        # it; the bench measures the stack, not the limit.
        "ESCALATOR_RATE_LIMIT_WRITES_PER_MINUTE": "0",
        "PYTHONPATH": str(PROJECT_ROOT),
    }


@contextlib.asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own on the PostgreSQL server at `server_url` (an SQLAlchemy URL), for
    one stack's read model; dropped on leaving. Its SQLAlchemy URL."""
    server = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = storm_parts.ReadModelAccess(server.set(drivername="postgresql+asyncpg").render_as_string(False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(False)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def running_stack(workers: int = 1, postgres_url: str | None = None) -> AsyncIterator[Stack]:
    """`escalator up` (plus `workers - 1` more `escalator worker`s), stopped on leaving. Its read
    model is the embedded SQLite file, or a fresh database on the PostgreSQL server at
    `postgres_url` (then `escalator up --demo`, which seeds the demo keys there)."""
    with tempfile.TemporaryDirectory(prefix="escalator-stack-") as tmp:
        root = Path(tmp)
        async with contextlib.AsyncExitStack() as databases:
            database_url = f"sqlite+aiosqlite:///{root / 'escalator.db'}"
            if postgres_url:
                database_url = await databases.enter_async_context(postgres_database(postgres_url))
            async with _running_stack(root, workers, database_url) as stack:
                yield stack


@contextlib.asynccontextmanager
async def _running_stack(root: Path, workers: int, database_url: str) -> AsyncIterator[Stack]:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = stack_env(
        root, api_port=api_port, temporal_port=temporal_port, ui_port=ui_port, database_url=database_url
    )
    demo = [] if database_url.startswith("sqlite") else ["--demo"]
    up = await spawn("escalator up", [sys.executable, "-m", "worker", "up", *demo], env=env, cwd=root)
    stack: Stack | None = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not any(line.startswith("Escalator is up.") for line in up.lines):
            if up.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`escalator up` did not come up:\n{up.tail()}")
            await asyncio.sleep(0.1)
        # The children read the same environment, so this client encodes as they do.
        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=data_converter(Settings()))
        stack = Stack(root, env, api_port, f"127.0.0.1:{temporal_port}", up, client, database_url)
        stack.processes()
        for i in range(workers - 1):
            extra = await spawn(
                f"worker {i + 2}", [sys.executable, "-m", "worker", "worker"], env=env, cwd=root
            )
            stack.extra.append(extra)
            stack.pids_seen.add(extra.pid)
        await wait_for_pollers(stack, workers)
        yield stack
    finally:
        if stack is not None:
            stack.processes()
            for extra in stack.extra:
                await extra.stop(signal.SIGTERM)
        status = await up.stop(signal.SIGINT)
        if status not in (0, 130, -signal.SIGINT):
            print(f"    (escalator up exited with {status}):\n{up.tail(10)}", file=sys.stderr, flush=True)
        # Nothing it started may outlive it; kill what did, and say so.
        seen = stack.pids_seen if stack is not None else set()
        await asyncio.sleep(0.5)
        for pid in sorted(seen):
            if alive(pid):
                print(f"    (pid {pid} outlived `escalator up`; killed)", file=sys.stderr, flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


async def worker_pids(client: Client, task_queue: str = TASK_QUEUE) -> set[int]:
    """The pids of the workers polling `task_queue` (the SDK's identity is `pid@host`)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    pids = set()
    for poller in described.pollers:
        head = poller.identity.split("@", 1)[0]
        if head.isdigit():
            pids.add(int(head))
    return pids


async def wait_for_pollers(stack: Stack, count: int, task_queue: str = TASK_QUEUE) -> set[int]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        pids = {pid for pid in await worker_pids(stack.client, task_queue) if alive(pid)}
        if len(pids) >= count:
            stack.pids_seen.update(pids)
            return pids
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pids)} of {count} workers poll {task_queue!r}")
        await asyncio.sleep(0.2)


# --- The no-op worker (a child process) -------------------------------------------------------


class Touches:
    def __init__(self) -> None:
        self.count = 0

    @activity.defn(name="bench_touch")
    async def touch(self) -> None:
        self.count += 1


def worker_tuning() -> dict[str, Any]:
    """The ticket worker's poller tuning, whatever worker/worker.py calls it today."""
    from worker import worker as ticket_worker

    names = {
        "max_concurrent_workflow_task_polls": "WORKFLOW_TASK_POLLS",
        "nonsticky_to_sticky_poll_ratio": "NONSTICKY_TO_STICKY_POLL_RATIO",
        "max_concurrent_activity_task_polls": "ACTIVITY_TASK_POLLS",
        "max_cached_workflows": "MAX_CACHED_WORKFLOWS",
    }
    return {
        arg: getattr(ticket_worker, const) for arg, const in names.items() if hasattr(ticket_worker, const)
    }


async def serve_noop(address: str, task_queue: str) -> None:
    """Run the no-op worker; print `touched N` whenever the count changes; stop on SIGTERM."""
    client = await Client.connect(address, data_converter=data_converter(Settings()))
    touches = Touches()
    workflows: list[type] = [NoopWorkflow]
    activities: list[Callable[..., Any]] = [touches.touch]
    if raw_db := os.environ.get(storm_parts.RAW_DB_ENV):
        # The raw storm's deadlines, recording into the stack's own read-model file.
        workflows.append(storm_parts.RawStormDeadline)
        activities.append(storm_parts.RawRecorder(raw_db).fire)
    worker = Worker(
        client, task_queue=task_queue, workflows=workflows, activities=activities, **worker_tuning()
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        shown = -1
        while not stop.is_set():
            if touches.count != shown:
                shown = touches.count
                print(f"touched {shown}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)


def touched(noop: Child) -> int:
    for line in reversed(noop.lines):
        if line.startswith("touched "):
            return int(line.split()[1])
    return 0


# --- Intake ---------------------------------------------------------------------------------


@dataclass
class Phase:
    kind: str  # "raw" or "api"
    n: int
    seconds: float  # first request sent .. last answer
    settle_seconds: float  # first request sent .. every workflow made its first step
    latencies: list[float]
    backlog_at_end: int  # not yet processed when the last answer came
    tickets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def settled_rate(self) -> float:
        return self.n / self.settle_seconds


async def timed_all(
    count: int, concurrency: int, call: Callable[[int], Awaitable[Any]]
) -> tuple[list[Any], list[float]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = [0.0] * count

    async def one(i: int) -> Any:
        async with gate:
            started = time.perf_counter()
            result = await call(i)
            latencies[i] = time.perf_counter() - started
            return result

    results = await asyncio.gather(*(one(i) for i in range(count)))
    return list(results), latencies


def ticket_body(i: int, *, customer: str | None = None, severity: int | None = None) -> dict[str, Any]:
    customers = list(DEMO_PRODUCTS)
    name = customer or customers[i % len(customers)]
    return {
        "customer_id": name,
        "title": f"Bench ticket {i}",
        "description": "Filed by bench/stack_bench.py to measure the stack.",
        "severity": severity or 2 + (i // len(customers)) % 3,
        "product": DEMO_PRODUCTS.get(name, "identity"),
        "channel": "email",
        "category": "bug",
    }


async def file_tickets(
    http: httpx.AsyncClient, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[list[dict[str, Any]], list[float]]:
    async def post(i: int) -> dict[str, Any]:
        answer = await http.post("/tickets", json=bodies[i], headers=SUPPORT)
        if answer.status_code != 201:
            raise RuntimeError(f"POST /tickets answered {answer.status_code}: {answer.text[:300]}")
        ticket: dict[str, Any] = answer.json()
        return ticket

    return await timed_all(len(bodies), concurrency, post)


def synced_among(read_model: Path, ticket_ids: list[str]) -> int:
    """How many of these tickets have a row in the read model (their first sync happened)."""
    with contextlib.closing(sqlite3.connect(f"file:{read_model}?mode=ro", uri=True, timeout=30)) as db:
        total = 0
        for start in range(0, len(ticket_ids), 500):
            chunk = ticket_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            row = db.execute(f"SELECT count(*) FROM tickets WHERE ticket_id IN ({marks})", chunk).fetchone()
            total += int(row[0])
        return total


async def wait_until(progress: Callable[[], Awaitable[int]], target: int, what: str) -> float:
    """Poll until `progress()` reaches `target`; the monotonic time it did. Bounded."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while (done := await progress()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: only {done} of {target} after {SETTLE_TIMEOUT:.0f} s")
        await asyncio.sleep(POLL_INTERVAL)
    return time.perf_counter()


async def api_phase(stack: Stack, http: httpx.AsyncClient, n: int, concurrency: int, offset: int) -> Phase:
    bodies = [ticket_body(offset + i) for i in range(n)]
    started = time.perf_counter()
    tickets, latencies = await file_tickets(http, bodies, concurrency)
    seconds = time.perf_counter() - started
    ids = [t["ticket_id"] for t in tickets]
    backlog = n - await asyncio.to_thread(synced_among, stack.read_model, ids)

    async def progress() -> int:
        return await asyncio.to_thread(synced_among, stack.read_model, ids)

    settled = await wait_until(progress, n, "tickets synced")
    return Phase("api", n, seconds, settled - started, latencies, backlog, tickets)


async def raw_phase(client: Client, noop: Child, task_queue: str, n: int, concurrency: int) -> Phase:
    before = touched(noop)

    async def start(i: int) -> None:
        await client.start_workflow(
            NoopWorkflow.run, id=f"bench-noop-{uuid.uuid4().hex}", task_queue=task_queue
        )

    started = time.perf_counter()
    _, latencies = await timed_all(n, concurrency, start)
    seconds = time.perf_counter() - started
    backlog = n - (touched(noop) - before)

    async def progress() -> int:
        return touched(noop) - before

    settled = await wait_until(progress, n, "no-op workflows touched")
    return Phase("raw", n, seconds, settled - started, latencies, backlog)


def pooled(phases: list[Phase]) -> tuple[float, float, float]:
    """Throughput (n / time), p99 latency and settled rate over several phases together."""
    n = sum(p.n for p in phases)
    return (
        n / sum(p.seconds for p in phases),
        percentile([lat for p in phases for lat in p.latencies], 99),
        n / sum(p.settle_seconds for p in phases),
    )


async def run_intake(n: int, concurrency: int) -> list[Result]:
    kib = 1024
    async with running_stack() as stack:
        tree = stack.processes()
        api_pids, worker_pids_ = tree["api"] or tree["up"], tree["worker"] or tree["up"]
        separate = bool(tree["api"] and tree["worker"] and set(tree["api"]).isdisjoint(tree["worker"]))
        polling = await worker_pids(stack.client)
        ticket_worker = next(iter(polling))
        noop_queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
        noop = await spawn(
            "noop worker",
            [sys.executable, "-m", "bench.stack_bench", "noop-worker", stack.temporal_address, noop_queue],
            env=stack.env,
            cwd=PROJECT_ROOT,
        )
        stack.extra.append(noop)
        await wait_for_pollers(stack, 1, noop_queue)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120, limits=limits) as http:
            # Warm-up: first imports, connections and caches are not per-ticket cost.
            await api_phase(stack, http, WARMUP, concurrency, 10_000_000)
            await raw_phase(stack.client, noop, noop_queue, WARMUP, concurrency)
            rss = {"ticket": [rss_of(ticket_worker)], "noop": [rss_of(noop.pid)]}
            api_rss = [rss_of(api_pids[0])]
            phases: list[Phase] = []
            for i, kind in enumerate(("raw", "api", "api", "raw")):
                if kind == "api":
                    phases.append(await api_phase(stack, http, n, concurrency, i * n))
                else:
                    phases.append(await raw_phase(stack.client, noop, noop_queue, n, concurrency))
            rss["ticket"].append(rss_of(ticket_worker))
            rss["noop"].append(rss_of(noop.pid))
            api_rss.append(rss_of(api_pids[0]))
        # One sample of what the API answered, so a reader can see the bench did real intake.
        sample = next(p for p in phases if p.kind == "api").tickets[0]
    api = [p for p in phases if p.kind == "api"]
    raw = [p for p in phases if p.kind == "raw"]
    api_rate, api_p99, processed = pooled(api)
    raw_rate, raw_p99, noop_processed = pooled(raw)
    opened = sum(p.n for p in api)
    per_ticket = (rss["ticket"][1] - rss["ticket"][0]) / opened / kib
    per_noop = (rss["noop"][1] - rss["noop"][0]) / sum(p.n for p in raw) / kib
    topology = (
        f"processes: API pid {api_pids}, worker pid {worker_pids_} "
        f"({'separate processes' if separate else 'ONE process for API and worker'}), "
        f"dev server pid {tree['temporal']}"
    )
    order = ", ".join(f"{p.kind} {p.rate:.0f}/s p99 {percentile(p.latencies, 99):.2f}s" for p in phases)
    return [
        Result(
            name="stack",
            metric="intake throughput: POST /tickets vs raw start_workflow",
            unit="req/s",
            subject=api_rate,
            baseline=raw_rate,
            rate=True,
            goal="API at >= 0.9x the raw rate",
            notes=[
                f"ABBA, {n} per phase, {concurrency} in flight, after {WARMUP} warm-up each; {order}",
                topology,
                f"sample answer: {sample['ticket_id']} {sample['customer_id']} Sev {sample['severity']} "
                f"status {sample['status']}, response due {sample['response_due']}",
            ],
        ),
        Result(
            name="stack",
            metric="intake p99 latency: POST /tickets vs raw start_workflow",
            unit="s",
            subject=api_p99,
            baseline=raw_p99,
            goal="<= 1.3x",
            notes=[
                f"p50: API {percentile([x for p in api for x in p.latencies], 50):.3f} s, "
                f"raw {percentile([x for p in raw for x in p.latencies], 50):.3f} s"
            ],
        ),
        Result(
            name="stack",
            metric="tickets processed (first sync) vs the intake rate",
            unit="tickets/s",
            subject=processed,
            baseline=api_rate,
            rate=True,
            goal="processed at >= 0.8x intake, no growing backlog",
            notes=[
                f"all synced after {', '.join(f'{p.settle_seconds:.1f}' for p in api)} s "
                f"(intake took {', '.join(f'{p.seconds:.1f}' for p in api)} s); "
                f"backlog when the last answer came: {', '.join(str(p.backlog_at_end) for p in api)} "
                f"of {n} ({'grows' if processed < 0.95 * api_rate else 'keeps up'})"
            ],
        ),
        Result(
            name="stack",
            metric="tickets processed vs no-op workflows (one activity) processed",
            unit="workflows/s",
            subject=processed,
            baseline=noop_processed,
            rate=True,
            goal="tickets at >= 0.8x",
            notes=[f"no-op: all touched after {', '.join(f'{p.settle_seconds:.1f}' for p in raw)} s"],
        ),
        Result(
            name="stack",
            metric="worker memory per open cached workflow: ticket vs no-op",
            unit="KiB",
            subject=per_ticket,
            baseline=per_noop,
            goal="<= 1.5x (<= 115 KiB)",
            notes=[
                f"worker RSS {rss['ticket'][0] / kib / kib:.1f} -> {rss['ticket'][1] / kib / kib:.1f} MiB "
                f"with {opened} more open tickets; no-op worker {rss['noop'][0] / kib / kib:.1f} -> "
                f"{rss['noop'][1] / kib / kib:.1f} MiB with {sum(p.n for p in raw)} more open no-op "
                f"workflows; API process {api_rss[0] / kib / kib:.1f} -> {api_rss[1] / kib / kib:.1f} MiB"
            ],
        ),
    ]


async def run_plumbing(n: int, concurrency: int) -> list[Result]:
    """The API's HTTP plumbing: the stack's own API (uvloop + httptools unless the environment
    says otherwise) against a second `escalator api` on uvicorn's pure-Python asyncio + h11,
    both on the same dev server, worker and read model, in ABBA order."""
    async with running_stack() as stack:
        slow_port = free_port()
        slow_env = {
            **stack.env,
            "ESCALATOR_API_PORT": str(slow_port),
            "ESCALATOR_API_LOOP": "asyncio",
            "ESCALATOR_API_HTTP": "h11",
        }
        slow = await spawn(
            "api (asyncio, h11)", [sys.executable, "-m", "worker", "api"], env=slow_env, cwd=stack.root
        )
        stack.extra.append(slow)
        stack.pids_seen.add(slow.pid)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        fast_url, slow_url = stack.api_url, f"http://127.0.0.1:{slow_port}"
        async with (
            httpx.AsyncClient(base_url=fast_url, timeout=120, limits=limits) as fast_http,
            httpx.AsyncClient(base_url=slow_url, timeout=120, limits=limits) as slow_http,
        ):
            for _ in range(int(STARTUP_TIMEOUT * 10)):
                with contextlib.suppress(httpx.HTTPError):
                    if (await slow_http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            for http in (fast_http, slow_http):
                await api_phase(stack, http, WARMUP, concurrency, 20_000_000)
            phases: dict[str, list[Phase]] = {"fast": [], "slow": []}
            for i, kind in enumerate(("fast", "slow", "slow", "fast")):
                http = fast_http if kind == "fast" else slow_http
                phases[kind].append(await api_phase(stack, http, n, concurrency, 30_000_000 + i * n))
    fast_rate, fast_p99, _ = pooled(phases["fast"])
    slow_rate, slow_p99, _ = pooled(phases["slow"])
    loop, http_impl = (
        os.environ.get("ESCALATOR_API_LOOP", "uvloop"),
        os.environ.get("ESCALATOR_API_HTTP", "httptools"),
    )
    order = ", ".join(
        f"{kind} {p.rate:.0f}/s"
        for kind, p in zip(
            ("fast", "slow", "slow", "fast"),
            [phases["fast"][0], *phases["slow"], phases["fast"][1]],
            strict=True,
        )
    )
    return [
        Result(
            name="stack",
            metric=f"POST /tickets throughput: {loop} + {http_impl} vs asyncio + h11",
            unit="req/s",
            subject=fast_rate,
            baseline=slow_rate,
            rate=True,
            goal="below 1x: the faster plumbing pays",
            notes=[f"two API processes on one stack, ABBA, {n} per phase, {concurrency} in flight; {order}"],
        ),
        Result(
            name="stack",
            metric=f"POST /tickets p99 latency: {loop} + {http_impl} vs asyncio + h11",
            unit="s",
            subject=fast_p99,
            baseline=slow_p99,
            goal="below 1x",
        ),
    ]


# --- The breach storm -----------------------------------------------------------------------


@dataclass
class RawStorm:
    """The same deadlines on no-op workflows (bench/storm_parts.py), after the ticket storm."""

    started: int
    start_seconds: float
    lags: list[float]
    missing: int
    waited_after_last_due: float
    # With `--storm-raw-warnings`: the same warnings' lags, and how many never fired.
    warning_lags: list[float] = field(default_factory=list)
    warnings_missing: int = 0
    warnings: int = 0


@dataclass
class Storm:
    workers: int
    database: str
    open_tickets: int
    due: list[tuple[str, datetime, datetime | None]]  # ticket id, response due, warn at
    filing_seconds: float
    breach_lags: list[float]
    warning_lags: list[float]
    missing_breaches: int
    missing_warnings: int
    waited_after_last_due: float
    worker_rss: list[int]
    quiet_probes: list[storm_parts.Probe] = field(default_factory=list)
    probes: list[storm_parts.Probe] = field(default_factory=list)
    restarted_at: float | None = None  # monotonic, when the worker was SIGKILLed mid-storm
    raw: RawStorm | None = None
    slow_story: str = ""

    def summary(self, lags: list[float]) -> str:
        if not lags:
            return "none notified"
        return f"p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s, max {max(lags):.2f} s"

    def counted_lags(self) -> list[float]:
        # Missing breaches count as lags past the end of the wait, so they never flatter p99.
        return self.breach_lags + [self.waited_after_last_due] * self.missing_breaches


def storm_contract(target_minutes: int) -> dict[str, Any]:
    return {
        "tier": "standard",
        "product_type": "platform",
        "timezone": "UTC",
        "overrides": {"response": {"3": {"minutes": target_minutes, "calendar": "24x7"}}},
    }


async def first_notices(
    read_model: storm_parts.ReadModelAccess, ids: set[str]
) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Per ticket, when its first breach and first warning notification were written."""
    rows = await read_model.fetch(
        "SELECT ticket_id, min(subject), min(created_at) FROM notifications "
        "WHERE subject LIKE 'SLA breached%' OR subject LIKE 'SLA warning%' "
        "GROUP BY ticket_id, substr(subject, 1, 12)"
    )
    breaches: dict[str, datetime] = {}
    warnings: dict[str, datetime] = {}
    for ticket_id, subject, created in rows:
        if ticket_id not in ids:
            continue
        at = storm_parts.as_utc(created)
        target = breaches if subject.startswith("SLA breached") else warnings
        target[ticket_id] = min(at, target.get(ticket_id, at))
    return breaches, warnings


async def written_rows(read_model: storm_parts.ReadModelAccess) -> int:
    [(events,)] = await read_model.fetch("SELECT count(*) FROM ticket_events")
    [(notices,)] = await read_model.fetch("SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL")
    return int(events) + int(notices)


async def until_quiet(
    read_model: storm_parts.ReadModelAccess, still: float = 15.0, bound: float = 600.0
) -> None:
    """Until the read model has taken no write for `still` seconds (the storm's backlog is done),
    so that the raw storm does not share the server with it. Bounded."""
    deadline = time.monotonic() + bound
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_rows = await written_rows(read_model)
        if now_rows != last:
            last, since = now_rows, time.monotonic()
        elif time.monotonic() - since >= still:
            return
        await asyncio.sleep(1.0)


async def run_raw_storm(
    stack: Stack,
    offsets: list[timedelta],
    calm: int,
    concurrency: int,
    grace: float,
    warn_offsets: list[timedelta | None] | None = None,
) -> RawStorm:
    """The same deadlines (`offsets` from the start of filing) on no-op workflows, on the same
    dev server, recorded into the same read-model file; with `warn_offsets` (one per deadline,
    None for none), each workflow first fires and records its warning too."""
    await storm_parts.create_raw_table(stack.access)
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    noop = await spawn(
        "raw storm worker",
        [sys.executable, "-m", "bench.stack_bench", "noop-worker", stack.temporal_address, queue],
        env={**stack.env, storm_parts.RAW_DB_ENV: stack.database_url},
        cwd=PROJECT_ROOT,
    )
    stack.extra.append(noop)
    await wait_for_pollers(stack, 1, queue)
    run = uuid.uuid4().hex[:8]
    began_at = datetime.now(UTC)
    due_at = [began_at + offset for offset in offsets]
    warn_at = [None if warn is None else began_at + warn for warn in warn_offsets or []]

    async def start(i: int) -> None:
        if i < calm:
            await stack.client.start_workflow(NoopWorkflow.run, id=f"raw-calm-{run}-{i}", task_queue=queue)
        else:
            due = due_at[i - calm].isoformat()
            warn = warn_at[i - calm] if warn_at else None
            await stack.client.start_workflow(
                storm_parts.RawStormDeadline.run,
                args=[due, warn.isoformat() if warn else None],
                id=f"raw-due-{run}-{i}",
                task_queue=queue,
            )

    started = time.perf_counter()
    await timed_all(calm + len(offsets), concurrency, start)
    start_seconds = time.perf_counter() - started
    last_due = max(due_at)
    wanted_warnings = sum(1 for warn in warn_at if warn is not None)
    while True:
        fired, warned = await storm_parts.raw_fired(stack.access)
        complete = len(fired) >= len(offsets) and len(warned) >= wanted_warnings
        if complete or datetime.now(UTC) > last_due + timedelta(seconds=grace):
            break
        await asyncio.sleep(1.0)
    waited = (datetime.now(UTC) - last_due).total_seconds()
    return RawStorm(
        started=calm + len(offsets),
        start_seconds=start_seconds,
        lags=list(fired.values()),
        missing=len(offsets) - len(fired),
        waited_after_last_due=waited,
        warning_lags=list(warned.values()),
        warnings_missing=wanted_warnings - len(warned),
        warnings=wanted_warnings,
    )


async def kill_worker_at(stack: Stack, at: datetime) -> float:
    """SIGKILL the stack's worker process(es) at `at`; `escalator up` starts it again. The
    monotonic time it did."""
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
    for pid in stack.processes()["worker"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return time.monotonic()


async def run_storm(options: Options, workers: int, database: str) -> Storm:
    open_tickets, due_tickets = options.storm_open, options.storm_due
    concurrency, grace = options.concurrency, options.storm_grace
    postgres = options.postgres_url if database == "postgres" else None
    async with running_stack(workers, postgres) as stack:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        prober = storm_parts.Prober(stack.api_url, SUPPORT, ticket_body(0, customer="acme", severity=3))
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=600, limits=limits) as http:
            made = await http.post(
                "/customers",
                json={
                    "id": STORM_CUSTOMER,
                    "name": "Storm Ltd",
                    "contract": storm_contract(options.storm_target_minutes),
                },
                headers=ADMIN,
            )
            if made.status_code != 201:
                raise RuntimeError(f"POST /customers answered {made.status_code}: {made.text[:300]}")
            polling = sorted(await worker_pids(stack.client))
            rss = [sum(rss_of(pid) for pid in polling)]
            # A person's action on a quiet stack: the baseline of the probes through the storm.
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=600) as quiet:
                quiet_probes = [await prober.one(quiet) for _ in range(3)]
            probing = asyncio.create_task(prober.run())
            # Tickets with long targets first, then the storm: short targets, due together.
            calm = [ticket_body(i) for i in range(open_tickets - due_tickets)]
            stormy = [ticket_body(i, customer=STORM_CUSTOMER, severity=3) for i in range(due_tickets)]
            filing_began = datetime.now(UTC)
            started = time.perf_counter()
            await file_tickets(http, calm, concurrency)
            filed, _ = await file_tickets(http, stormy, concurrency)
            filing_seconds = time.perf_counter() - started
        due: list[tuple[str, datetime, datetime | None]] = []
        for ticket in filed:
            clock = next(c for c in ticket["clocks"] if c["kind"] == "first_response")
            warn = datetime.fromisoformat(clock["warn_at"]) if clock.get("warn_at") else None
            due.append((ticket["ticket_id"], datetime.fromisoformat(clock["due_at"]), warn))
        ids = {t for t, _, _ in due}
        first_due, last_due = min(d for _, d, _ in due), max(d for _, d, _ in due)
        killing = (
            asyncio.create_task(kill_worker_at(stack, first_due + (last_due - first_due) / 2))
            if options.storm_restart
            else None
        )
        # Bounded wait: until every breach and warning is notified, or `grace` past the last due.
        while True:
            breaches, warnings = await first_notices(stack.access, ids)
            now = datetime.now(UTC)
            complete = len(breaches) == len(ids) and len(warnings) == sum(1 for *_, w in due if w)
            if complete or now > last_due + timedelta(seconds=grace):
                break
            await asyncio.sleep(1.0)
        waited = (datetime.now(UTC) - last_due).total_seconds()
        restarted_at = await killing if killing else None
        prober.stop.set()
        await probing
        slow = storm_parts.slowest(prober.probes)
        slow_story = (
            f"slowest probe, ticket {slow.ticket_id}: "
            + await storm_parts.history_story(stack.client, f"ticket-{slow.ticket_id}")
            if slow
            else ""
        )
        slow_ack = storm_parts.slowest(prober.probes, by_acknowledgement=True)
        if slow_ack and slow and slow_ack.ticket_id != slow.ticket_id:
            slow_story += (
                f"\n    slowest acknowledgement ({slow_ack.acknowledge:.1f} s), ticket {slow_ack.ticket_id}: "
                + await storm_parts.history_story(stack.client, f"ticket-{slow_ack.ticket_id}")
            )
        # After a restart the worker is another process: measure the ones polling now.
        rss.append(sum(rss_of(pid) for pid in await worker_pids(stack.client) if alive(pid)))
        raw: RawStorm | None = None
        if options.storm_raw:
            await until_quiet(stack.access)
            offsets = [d - filing_began for _, d, _ in due]
            warn_offsets = (
                [None if w is None else w - filing_began for _, _, w in due]
                if options.storm_raw_warnings
                else None
            )
            raw = await run_raw_storm(
                stack, offsets, open_tickets - due_tickets, concurrency, grace, warn_offsets
            )
    breach_lags = [(breaches[t] - d).total_seconds() for t, d, _ in due if t in breaches]
    warning_lags = [(warnings[t] - w).total_seconds() for t, _, w in due if w and t in warnings]
    return Storm(
        workers=workers,
        database=database,
        open_tickets=open_tickets,
        due=due,
        filing_seconds=filing_seconds,
        breach_lags=breach_lags,
        warning_lags=warning_lags,
        missing_breaches=len(ids) - len(breaches),
        missing_warnings=sum(1 for t, _, w in due if w and t not in warnings),
        waited_after_last_due=waited,
        worker_rss=rss,
        quiet_probes=quiet_probes,
        probes=prober.probes,
        restarted_at=restarted_at,
        raw=raw,
        slow_story=slow_story,
    )


def storm_results(storms: list[Storm]) -> list[Result]:
    results = []
    for storm in storms:
        results += storm_result(storm)
    one = storms[0]
    for storm in storms[1:]:
        lags, one_lags = storm.counted_lags(), one.counted_lags()
        results.append(
            Result(
                name="stack",
                metric=f"breach lag p99, {storm.workers} workers vs 1",
                unit="s",
                subject=percentile(lags, 99),
                baseline=percentile(one_lags, 99),
                goal="below 1x: workers divide the lag",
                notes=[f"p50 {percentile(lags, 50):.2f} s vs {percentile(one_lags, 50):.2f} s"],
            )
        )
    return results


def storm_result(storm: Storm) -> list[Result]:
    due_times = [d for _, d, _ in storm.due]
    poller = poller_lags(due_times)
    spread = (max(due_times) - min(due_times)).total_seconds()
    lags = storm.counted_lags()
    mib = 1024 * 1024
    shape = f"{storm.open_tickets} open / {len(storm.due)} due, {storm.workers} worker(s), {storm.database}"
    notes = [
        f"{storm.open_tickets} open tickets on {storm.workers} worker process(es), {len(storm.due)} "
        f"of them due within {spread:.0f} s; filed in {storm.filing_seconds:.0f} s "
        f"({storm.open_tickets / storm.filing_seconds:.1f}/s)",
        f"breach notification lag: {storm.summary(storm.breach_lags)}; missing {storm.missing_breaches} "
        f"of {len(storm.due)} after waiting {storm.waited_after_last_due:.0f} s past the last due time",
        f"75% warning lag: {storm.summary(storm.warning_lags)}; missing {storm.missing_warnings}",
        f"60 s poller, same due times (600 phases pooled): {storm.summary(poller)}",
        f"worker RSS {storm.worker_rss[0] / mib:.0f} -> {storm.worker_rss[-1] / mib:.0f} MiB (all workers)",
    ]
    baseline, against = percentile(poller, 99), "a 60 s poller"
    results: list[Result] = []
    if storm.raw is not None:
        raw = storm.raw
        raw_lags = raw.lags + [raw.waited_after_last_due] * raw.missing
        baseline, against = percentile(raw_lags, 99), "the raw storm"
        if raw.warnings:
            against = "the raw storm with the same warnings"
        notes.append(
            f"raw storm, the same deadlines on no-op workflows: {storm.summary(raw.lags)}; "
            f"missing {raw.missing}; {raw.started} started in {raw.start_seconds:.0f} s "
            f"({raw.started / raw.start_seconds:.1f}/s)"
        )
        if raw.warnings:
            notes.append(
                f"raw storm's warnings (each workflow fired and recorded the ticket's 75% warning "
                f"first): {storm.summary(raw.warning_lags)}; missing {raw.warnings_missing} of {raw.warnings}"
            )
        results.append(
            Result(
                name="stack",
                metric=f"storm intake rate, POST /tickets vs raw starts, {shape}",
                unit="/s",
                subject=storm.open_tickets / storm.filing_seconds,
                baseline=raw.started / raw.start_seconds,
                goal=">= 0.9x",
            )
        )
    results.insert(
        0,
        Result(
            name="stack",
            metric=f"breach lag p99, {shape}, vs {against}",
            unit="s",
            subject=percentile(lags, 99),
            baseline=baseline,
            goal="<= 2x the raw storm and < 5 s, none missing",
            notes=notes,
        ),
    )
    results += action_results(storm, shape)
    return results


def action_results(storm: Storm, shape: str) -> list[Result]:
    """A person's comment or acknowledgement through the storm, against the same on a quiet stack."""
    quiet = storm_parts.worst_action(storm.quiet_probes)
    before = [p for p in storm.probes if storm.restarted_at is None or p.at < storm.restarted_at]
    after = [p for p in storm.probes if storm.restarted_at is not None and p.at >= storm.restarted_at]
    results = []
    for label, probes in (("during the storm", before), ("after a worker restart mid-storm", after)):
        if not probes:
            continue
        results.append(
            Result(
                name="stack",
                metric=f"a person's action, worst, {label}, {shape}, vs a quiet stack",
                unit="s",
                subject=storm_parts.worst_action(probes),
                baseline=quiet,
                goal="<= 2 s at worst",
                notes=[
                    storm_parts.probe_summary(probes, label),
                    storm_parts.probe_summary(storm.quiet_probes, "quiet stack"),
                    storm.slow_story,
                ],
            )
        )
    return results


# --- Entry points -----------------------------------------------------------------------------


@dataclass
class Options:
    intake: int = 400
    concurrency: int = 50
    # The full storm of issue 18 by default: 10,000 open, 9,000 first responses due 6 minutes
    # after their intake, so they fall due over about as long as the filing took.
    storm_open: int = 10_000
    storm_due: int = 9_000
    storm_workers: tuple[int, ...] = (1,)
    storm_target_minutes: int = 6
    storm_grace: float = 90.0
    storm_raw: bool = True
    # The raw storm's workflows also fire at each ticket's warning time: the same two deadlines.
    storm_raw_warnings: bool = False
    storm_restart: bool = False
    # The read model of each storm run: the embedded SQLite file and PostgreSQL (a database of
    # the run's own on this server, dropped after).
    storm_databases: tuple[str, ...] = ("sqlite", "postgres")
    postgres_url: str = os.environ.get(
        "ESCALATOR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    parts: tuple[str, ...] = ("intake", "plumbing", "storm")


def run(options: Options | None = None) -> list[Result]:
    options = options or Options()

    async def main() -> list[Result]:
        results: list[Result] = []
        if "intake" in options.parts:
            results += await run_intake(options.intake, options.concurrency)
        if "plumbing" in options.parts:
            results += await run_plumbing(options.intake, options.concurrency)
        if "storm" in options.parts:
            for database in options.storm_databases:
                storms = [await run_storm(options, workers, database) for workers in options.storm_workers]
                results += storm_results(storms)
        return results

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["noop-worker"]:
        address, task_queue = args[1], args[2]
        asyncio.run(serve_noop(address, task_queue))
        return 0
    print(json.dumps({"usage": "python -m bench stack [options]; see python -m bench --help"}))
    return 2


if __name__ == "__main__":
    sys.exit(main())
