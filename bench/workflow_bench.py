"""Workflow throughput and worker memory on a real Temporal dev server.

Each phase runs in a fresh child process with its own dev server (SQLite file with the same
pragmas as `escalator up`), its own SQLite read model and one worker built like
worker.worker.build_worker, so the two phases cannot disturb each other's RSS or history:

- baseline: N starts of BenchNoopWorkflow (one empty activity, then it waits);
- tickets:  N starts of TicketWorkflow (tests.factories.opened_ticket), "first step" being
  the ticket's first sync, seen as N rows in the read model.

The child prints one JSON line; the parent turns the two phases into ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.common import Result, rss_bytes
from bench.noop_workflow import NoopWorkflow
from runtime.codec import data_converter
from runtime.settings import Settings
from store.db import Ticket, make_engine, make_sessionmaker, migrate
from tests.factories import opened_ticket
from worker.devserver import SQLITE_PRAGMAS
from worker.worker import (
    ACTIVITY_TASK_POLLS,
    GRACEFUL_SHUTDOWN,
    NONSTICKY_TO_STICKY_POLL_RATIO,
    WORKFLOW_TASK_POLLS,
    build_worker,
)
from workflows import search_attributes
from workflows.models import TicketOpened, workflow_id_for
from workflows.ticket import TicketWorkflow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
PHASES = ("baseline", "tickets")
WARMUP = 5  # workflows started before measuring: first-run imports are not per-ticket cost
START_CONCURRENCY = 50  # client starts in flight at once
SETTLE_TIMEOUT = 120.0  # seconds a phase may take to see every first step
POLL_INTERVAL = 0.05
CUSTOMERS = ("acme", "globex", "initech", "umbrella", "contoso")


@dataclass
class PhaseResult:
    phase: str
    n: int
    start_seconds: float  # first start sent .. last start acknowledged by the server
    settle_seconds: float  # first start sent .. every workflow has made its first step
    rss_before: int  # bytes, worker warmed up with WARMUP workflows open
    rss_after: int  # bytes, N more workflows open and cached
    failed_attempts: int = 0  # activity attempts that failed and were retried
    failure_messages: list[str] = field(default_factory=list)  # distinct, first few

    @property
    def starts_per_s(self) -> float:
        return self.n / self.start_seconds

    @property
    def settled_per_s(self) -> float:
        return self.n / self.settle_seconds

    @property
    def rss_delta(self) -> int:
        return self.rss_after - self.rss_before


class Touches:
    """The baseline's activity: counts calls, does nothing else."""

    def __init__(self) -> None:
        self.count = 0

    @activity.defn(name="bench_touch")
    async def touch(self) -> None:
        self.count += 1


class FailedAttempts(logging.Handler):
    """Counts activity attempts the worker reports as failed, instead of printing tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        error = record.exc_info[1] if record.exc_info else None
        text = f"{type(error).__name__}: {str(error).splitlines()[0]}" if error else record.getMessage()
        if text not in self.messages and len(self.messages) < 3:
            self.messages.append(text[:200])


def noop_worker(client: Client, task_queue: str, touches: Touches) -> Worker:
    """The baseline worker: the same tuning as build_worker, the no-op workflow instead."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[NoopWorkflow],
        activities=[touches.touch],
        max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
        nonsticky_to_sticky_poll_ratio=NONSTICKY_TO_STICKY_POLL_RATIO,
        max_concurrent_activity_task_polls=ACTIVITY_TASK_POLLS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def start_all(starters: list[Callable[[], Awaitable[Any]]]) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(start: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await start()

    await asyncio.gather(*(one(s) for s in starters))


async def wait_until(progress: Callable[[], Awaitable[int]], target: int, what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while (done := await progress()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: only {done} of {target} after {SETTLE_TIMEOUT:.0f} s")
        await asyncio.sleep(POLL_INTERVAL)


def ticket_batch(count: int) -> list[TicketOpened]:
    """Tickets across the demo contracts and Sev 1-4, received now (deadlines in the future)."""
    now = datetime.now(UTC)
    base = {c: opened_ticket(c, 3, now) for c in CUSTOMERS}  # one entitlement per contract
    combos = itertools.cycle(itertools.product(CUSTOMERS, (1, 2, 3, 4)))
    batch = []
    for customer, severity in itertools.islice(combos, count):
        batch.append(
            base[customer].model_copy(update={"ticket_id": uuid.uuid4().hex[:12], "severity": severity})
        )
    return batch


async def start_dev_server(directory: Path) -> WorkflowEnvironment:
    """A dev server on a SQLite file in `directory`, with `escalator up`'s pragmas and the
    ticket search attributes."""
    pragmas = [arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)]
    return await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        dev_server_database_filename=str(directory / "temporal.db"),
        dev_server_extra_args=pragmas,
        dev_server_log_level="error",
        search_attributes=search_attributes.ALL_KEYS,
    )


async def run_phase(phase: str, n: int) -> PhaseResult:
    with tempfile.TemporaryDirectory(prefix="escalator-bench-") as tmp:
        env = await start_dev_server(Path(tmp))
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'escalator.db'}"
        engine = make_engine(database_url)
        try:
            await migrate(engine)
            sessionmaker = make_sessionmaker(engine)
            task_queue = f"bench-{phase}-{uuid.uuid4().hex[:8]}"
            if phase == "tickets":
                worker = build_worker(env.client, sessionmaker, Settings(task_queue=task_queue))
                return await _measure_tickets(env.client, worker, n, sessionmaker)
            touches = Touches()
            return await _measure_noop(env.client, noop_worker(env.client, task_queue, touches), n, touches)
        finally:
            await engine.dispose()
            await env.shutdown()


async def _measure(
    phase: str,
    worker: Worker,
    n: int,
    make_starters: Callable[[int], list[Callable[[], Awaitable[Any]]]],
    progress: Callable[[], Awaitable[int]],
) -> PhaseResult:
    failures = FailedAttempts()
    activity_log = logging.getLogger("temporalio.activity")
    activity_log.addHandler(failures)
    activity_log.propagate = False
    async with worker:
        await start_all(make_starters(WARMUP))
        await wait_until(progress, WARMUP, f"{phase} warm-up")
        starters = make_starters(n)
        gc.collect()
        rss_before = rss_bytes()
        started = time.perf_counter()
        await start_all(starters)
        start_seconds = time.perf_counter() - started
        await wait_until(progress, WARMUP + n, phase)
        settle_seconds = time.perf_counter() - started
        gc.collect()
        rss_after = rss_bytes()
    return PhaseResult(
        phase, n, start_seconds, settle_seconds, rss_before, rss_after, failures.count, failures.messages
    )


async def _measure_tickets(
    client: Client, worker: Worker, n: int, sessionmaker: async_sessionmaker[AsyncSession]
) -> PhaseResult:
    task_queue = worker.config()["task_queue"]

    def make_starters(count: int) -> list[Callable[[], Awaitable[Any]]]:
        def starter(opened: TicketOpened) -> Callable[[], Awaitable[Any]]:
            return lambda: client.start_workflow(
                TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=task_queue
            )

        return [starter(opened) for opened in ticket_batch(count)]

    async def synced() -> int:
        async with sessionmaker() as session:
            return int((await session.execute(select(func.count()).select_from(Ticket))).scalar_one())

    return await _measure("tickets", worker, n, make_starters, synced)


async def _measure_noop(client: Client, worker: Worker, n: int, touches: Touches) -> PhaseResult:
    task_queue = worker.config()["task_queue"]

    def make_starters(count: int) -> list[Callable[[], Awaitable[Any]]]:
        def starter(workflow_id: str) -> Callable[[], Awaitable[Any]]:
            return lambda: client.start_workflow(NoopWorkflow.run, id=workflow_id, task_queue=task_queue)

        return [starter(f"bench-noop-{uuid.uuid4().hex[:12]}") for _ in range(count)]

    async def touched() -> int:
        return touches.count

    return await _measure("baseline", worker, n, make_starters, touched)


def run_child(phase: str, n: int) -> PhaseResult:
    """Run one phase in a fresh interpreter and read back its JSON line."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.workflow_bench", "--phase", phase, "-n", str(n)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=SETTLE_TIMEOUT + 60,
        check=True,
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return PhaseResult(**data)


def run(n: int = 200) -> list[Result]:
    base = run_child("baseline", n)
    tickets = run_child("tickets", n)
    mib = 1024 * 1024
    setup = (
        f"N={n} concurrent starts ({START_CONCURRENCY} in flight) after {WARMUP} warm-up runs; "
        "dev server on a SQLite file with WAL/synchronous=NORMAL; worker tuned as build_worker; "
        "each phase a fresh process and server."
    )
    return [
        Result(
            name="workflow",
            metric="starts",
            unit="starts/s",
            subject=tickets.starts_per_s,
            baseline=base.starts_per_s,
            rate=True,
            notes=[
                setup,
                f"start time: tickets {tickets.start_seconds:.2f} s, baseline {base.start_seconds:.2f} s",
            ],
        ),
        Result(
            name="workflow",
            metric="first step (ticket: first sync in the read model)",
            unit="workflows/s",
            subject=tickets.settled_per_s,
            baseline=base.settled_per_s,
            rate=True,
            notes=[
                f"all {n} done after: tickets {tickets.settle_seconds:.2f} s, "
                f"baseline {base.settle_seconds:.2f} s (from the first start)",
                f"failed activity attempts (retried): tickets {tickets.failed_attempts}, "
                f"baseline {base.failed_attempts}"
                + (f" -- {'; '.join(tickets.failure_messages)}" if tickets.failure_messages else ""),
            ],
        ),
        Result(
            name="workflow",
            metric=f"worker RSS growth holding {n} open workflows",
            unit="MiB",
            subject=tickets.rss_delta / mib,
            baseline=base.rss_delta / mib,
            notes=[
                f"RSS before -> after: tickets {tickets.rss_before / mib:.1f} -> "
                f"{tickets.rss_after / mib:.1f} MiB, baseline {base.rss_before / mib:.1f} -> "
                f"{base.rss_after / mib:.1f} MiB",
                f"per open workflow: tickets {tickets.rss_delta / n / 1024:.0f} KiB, "
                f"baseline {base.rss_delta / n / 1024:.0f} KiB",
            ],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="one phase of the workflow benchmark (internal)")
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run_phase(args.phase, args.n))
    print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
