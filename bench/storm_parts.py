"""Issue 18's companions to the stack's storm (bench/stack_bench.py):

- **the raw storm**: the least any design must pay for "a deadline fired and was recorded".
  The same number of workflows as the storm has open tickets, on the same dev server in the
  same run: the calm ones are bench/noop_workflow.py's (one empty activity, then they wait),
  and each of the due ones sleeps until the due time of one storm ticket (the same offset from
  the start of filing), then runs one activity that writes one row to the same read-model
  database. Served by a no-op worker process with the ticket worker's tuning.
- **a person's action through the storm**: every few seconds a fresh ticket is filed, then
  commented on and acknowledged, each answer timed, on a connection pool of its own (a person
  does not queue behind the storm's load generator).

Nothing here runs at import time; the workflow is unsandboxed and deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType, TaskQueueKind
from temporalio.client import Client

from bench.common import percentile

RAW_TABLE = "bench_raw_deadlines"
RAW_DB_ENV = "BENCH_RAW_DB"  # the no-op worker's read-model URL, for the raw storm's writes


class ReadModelAccess:
    """The stack's read model seen from outside the stack: its SQLite file (read-only) or its
    PostgreSQL database, by the stack's own SQLAlchemy URL. SQL is written with `?` markers."""

    def __init__(self, url: str) -> None:
        # A bare path is an SQLite file.
        self.url = make_url(url if "://" in url else f"sqlite:///{url}")
        self.postgres = self.url.get_backend_name() == "postgresql"

    @property
    def dsn(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def path(self) -> str:
        return self.url.database or ""

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.postgres:
            connection = await asyncpg.connect(self.dsn)
            try:
                return [tuple(row) for row in await connection.fetch(dollar_markers(sql), *args)]
            finally:
                await connection.close()
        return await asyncio.to_thread(self._sqlite_fetch, sql, args)

    def _sqlite_fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60)) as db:
            return [tuple(row) for row in db.execute(sql, args).fetchall()]

    async def execute(self, sql: str) -> None:
        if self.postgres:
            connection = await asyncpg.connect(self.dsn)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()
            return
        with contextlib.closing(sqlite3.connect(self.path, timeout=60)) as db:
            db.execute(sql)
            db.commit()


def dollar_markers(sql: str) -> str:
    """`?` markers as asyncpg's `$1, $2, ...`."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


def as_utc(value: datetime | str) -> datetime:
    """A timestamp as the read model returns it (SQLite: ISO text; PostgreSQL: datetime), in UTC."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


class RawRecorder:
    """The raw storm's one write per fired deadline: one SQLite connection, or one PostgreSQL
    pool, per process, as the ticket worker's recorder has."""

    INSERT = (
        f"INSERT INTO {RAW_TABLE} (workflow_id, due_at, fired_at) VALUES (?, ?, ?) "
        "ON CONFLICT (workflow_id) DO NOTHING"
    )

    def __init__(self, url: str) -> None:
        self._access = ReadModelAccess(url)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pool: asyncpg.Pool | None = None

    def _write(self, workflow_id: str, due_at: str, fired: str) -> None:
        with self._lock:
            if self._db is None:
                self._db = sqlite3.connect(self._access.path, timeout=60, check_same_thread=False)
            self._db.execute(self.INSERT, (workflow_id, due_at, fired))
            self._db.commit()

    @activity.defn(name="bench_raw_fire")
    async def fire(self, workflow_id: str, due_at: str) -> None:
        fired = datetime.now(UTC).isoformat()
        if not self._access.postgres:
            await asyncio.to_thread(self._write, workflow_id, due_at, fired)
            return
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._access.dsn, min_size=1, max_size=10)
        await self._pool.execute(dollar_markers(self.INSERT), workflow_id, due_at, fired)


# The raw storm's row for a deadline's warning: the workflow id with this after it.
WARNING_SUFFIX = "#warning"


@workflow.defn(name="BenchRawStormDeadline", sandboxed=False)
class RawStormDeadline:
    """Sleeps until its due time (ISO 8601, UTC), then records that it fired; given a warning
    time too, first sleeps until that and records it (`--storm-raw-warnings`: the same two
    deadlines a storm ticket has, its 75% warning and its breach)."""

    @workflow.run
    async def run(self, due_at: str, warn_at: str | None = None) -> None:
        workflow_id = workflow.info().workflow_id
        for at, row in ((warn_at, workflow_id + WARNING_SUFFIX), (due_at, workflow_id)):
            if at is None:
                continue
            delay = (datetime.fromisoformat(at) - workflow.now()).total_seconds()
            if delay > 0:
                await workflow.sleep(delay)
            await workflow.execute_activity(
                "bench_raw_fire", args=[row, at], start_to_close_timeout=timedelta(seconds=60)
            )


async def create_raw_table(read_model: ReadModelAccess) -> None:
    await read_model.execute(
        f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} "
        "(workflow_id TEXT PRIMARY KEY, due_at TEXT NOT NULL, fired_at TEXT NOT NULL)"
    )


async def raw_fired(read_model: ReadModelAccess) -> tuple[dict[str, float], dict[str, float]]:
    """Per raw deadline written so far, and per raw warning: its lag, written - due, in seconds."""
    rows = await read_model.fetch(f"SELECT workflow_id, due_at, fired_at FROM {RAW_TABLE}")
    deadlines: dict[str, float] = {}
    warnings: dict[str, float] = {}
    for wid, due, fired in rows:
        into = warnings if wid.endswith(WARNING_SUFFIX) else deadlines
        into[wid] = (as_utc(fired) - as_utc(due)).total_seconds()
    return deadlines, warnings


# --- A person's action through the storm ------------------------------------------------------


@dataclass
class Probe:
    at: float  # monotonic, when it started
    intake: float
    comment: float
    acknowledge: float
    failed: str | None = None
    ticket_id: str = ""


@dataclass
class Prober:
    """Acts on a fresh ticket every `every` seconds until stopped."""

    base_url: str
    headers: dict[str, str]
    body: dict[str, Any]
    every: float = 5.0
    timeout: float = 180.0  # seconds a step may take before the probe counts as failed
    probes: list[Probe] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=600) as http:
            while not self.stop.is_set():
                self.probes.append(await self.one(http))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.every)

    async def one(self, http: httpx.AsyncClient) -> Probe:
        began = time.monotonic()
        times: list[float] = []
        steps = [
            ("POST", "/tickets", self.body, 201),
            ("POST", "/tickets/{id}/comment", {"body": "Looking into it (bench probe)."}, 200),
            ("POST", "/tickets/{id}/acknowledge", {}, 200),
        ]
        ticket_id = ""
        for method, path, body, expected in steps:
            started = time.perf_counter()
            try:
                answer = await http.request(
                    method, path.format(id=ticket_id), json=body, headers=self.headers, timeout=self.timeout
                )
            except httpx.HTTPError as error:
                # No answer within the bound: a failed probe that took at least that long.
                times.append(time.perf_counter() - started)
                times += [float("nan")] * (3 - len(times))
                failed = f"{path} {type(error).__name__}"
                return Probe(began, times[0], times[1], times[2], failed, ticket_id)
            times.append(time.perf_counter() - started)
            if answer.status_code != expected:
                times += [float("nan")] * (3 - len(times))
                failed = f"{path} {answer.status_code}: {answer.text[:120]}"
                return Probe(began, times[0], times[1], times[2], failed, ticket_id)
            if not ticket_id:
                ticket_id = answer.json()["ticket_id"]
        return Probe(began, times[0], times[1], times[2], None, ticket_id)


def probe_summary(probes: list[Probe], what: str) -> str:
    done = [p for p in probes if not p.failed]
    failed = len(probes) - len(done)
    reasons = sorted({p.failed for p in probes if p.failed})
    if not done:
        return f"{what}: no probe answered ({failed} failed: {'; '.join(reasons)[:200]})"
    parts = []
    for name in ("intake", "comment", "acknowledge"):
        values = [getattr(p, name) for p in done]
        parts.append(f"{name} p50 {percentile(values, 50):.2f} s, max {max(values):.2f} s")
    return f"{what} ({len(done)} probes, {failed} failed): " + "; ".join(parts)


def worst_action(probes: list[Probe]) -> float:
    """The longest a comment or acknowledgement took; a probe that timed out counts with the
    time it waited, so a failure never flatters the figure."""
    times = [t for p in probes for t in (p.comment, p.acknowledge) if t == t]  # not NaN
    return max(times, default=float("nan"))


def slowest(probes: list[Probe], *, by_acknowledgement: bool = False) -> Probe | None:
    """The probe whose comment or acknowledgement took longest (or its acknowledgement alone)."""
    timed = [p for p in probes if p.ticket_id and p.comment == p.comment]  # answered its comment
    if by_acknowledgement:
        timed = [p for p in timed if p.acknowledge == p.acknowledge]
        return max(timed, key=lambda p: p.acknowledge, default=None)
    return max(timed, key=lambda p: max(p.comment, p.acknowledge), default=None)


async def history_story(client: Client, workflow_id: str) -> str:
    """Where a slow probe's time went: its history's events with the seconds since the first,
    workflow-task timeouts and long gaps called out, then every event in order (a workflow
    task's queue, sticky or the shared one, beside its scheduling)."""
    events = [event async for event in client.get_workflow_handle(workflow_id).fetch_history_events()]
    if not events:
        return "no history"
    start = events[0].event_time.ToDatetime()
    parts, every, previous = [], [], start
    for event in events:
        at = event.event_time.ToDatetime()
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        gap = (at - previous).total_seconds()
        if gap >= 1.0 or "timed_out" in name:
            parts.append(f"{name} at +{(at - start).total_seconds():.1f} s (after a {gap:.1f} s gap)")
        queue = ""
        if event.HasField("workflow_task_scheduled_event_attributes"):
            sticky = (
                event.workflow_task_scheduled_event_attributes.task_queue.kind
                == TaskQueueKind.TASK_QUEUE_KIND_STICKY
            )
            queue = " (sticky)" if sticky else " (shared)"
        every.append(f"+{(at - start).total_seconds():.1f} {name}{queue}")
        previous = at
    gaps = "; ".join(parts) if parts else "no gap of 1 s or more"
    return f"{len(events)} events; {gaps}\n      every event: " + ", ".join(every)
