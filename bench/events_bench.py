"""History events per path (issue 18): what one ticket writes to Temporal for each thing that
happens to it, read from its real history, beside the raw baseline (a workflow that sleeps
until the same due time and then runs one activity).

Deterministic: a count, not a time, so it is the same on a loaded machine. It runs on a dev
server in real time, with the Sev 3 first response due one minute after intake (a contract
override), so it takes a little over a minute.

    python -m bench events
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from bench.common import Result
from bench.workflow_bench import start_dev_server
from runtime.settings import Settings
from store.db import make_engine, make_sessionmaker, migrate
from tests.factories import DEMO_TERMS, SUPPORT, opened_ticket
from tests.fixtures_api import wait_until_quiet
from worker.worker import build_worker
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.comment import Comment
from workflows.enums import CoverageCalendar
from workflows.models import TicketOpened, workflow_id_for
from workflows.terms import ResponseTarget, TargetOverrides
from workflows.ticket import TicketWorkflow

DUE_AFTER = timedelta(minutes=1)


@activity.defn(name="bench_raw_record")
async def raw_record() -> None:
    """The raw baseline's one write (its cost is not counted here, only its events)."""


@workflow.defn(name="BenchRawDeadline", sandboxed=False)
class RawDeadline:
    """Sleeps until its due time, then runs one activity: the least a deadline can cost."""

    @workflow.run
    async def run(self, due_in_seconds: float) -> None:
        await workflow.sleep(due_in_seconds)
        await workflow.execute_activity(raw_record, start_to_close_timeout=timedelta(seconds=30))


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    """Events in the workflow's history; 0 before it is started."""
    try:
        return len((await handle.fetch_history()).events)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return 0
        raise


async def after_timer(handle: WorkflowHandle[Any, Any], fired_before: int) -> None:
    """Wait (on the history, no polling) until one more timer has fired, then until quiet."""
    fired = 0
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            fired += 1
            if fired > fired_before:
                break
    await wait_until_quiet(handle)


async def timers_fired(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(1 for event in history.events if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED)


async def step(handle: WorkflowHandle[Any, Any], action: Callable[[], Awaitable[Any]]) -> int:
    """The history events one step adds: `action`, then until the workflow is quiet again."""
    before = await history_length(handle)
    await action()
    await wait_until_quiet(handle)
    return await history_length(handle) - before


def short_sev3(received_at: datetime) -> TicketOpened:
    """Acme (Premium) Sev 3, its first response due a minute after intake (24x7)."""
    terms = DEMO_TERMS["acme"].model_copy(
        update={
            "overrides": TargetOverrides(
                response={"3": ResponseTarget(minutes=1, calendar=CoverageCalendar.ALWAYS)}
            )
        }
    )
    return opened_ticket("acme", 3, received_at, terms=terms, title="Audit export is slow")


async def ticket_paths(client: Client, task_queue: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    start = datetime.now(UTC)
    sev3 = short_sev3(start)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id_for(sev3.ticket_id))
    counts["intake (Sev 3)"] = await step(
        handle,
        lambda: client.start_workflow(
            TicketWorkflow.run, sev3, id=workflow_id_for(sev3.ticket_id), task_queue=task_queue
        ),
    )
    fired = await timers_fired(handle)
    counts["75% warning"] = await step(handle, lambda: after_timer(handle, fired))
    fired = await timers_fired(handle)
    counts["breach"] = await step(handle, lambda: after_timer(handle, fired))
    counts["acknowledgement"] = await step(
        handle, lambda: handle.execute_update("acknowledge", Acknowledge(actor=SUPPORT))
    )
    counts["comment"] = await step(
        handle, lambda: handle.execute_update("comment", Comment(actor=SUPPORT, body="Looking into it"))
    )
    sev1 = opened_ticket("acme", 1, datetime.now(UTC), channel=sev3.channel)
    sev1_handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id_for(sev1.ticket_id))
    counts["intake (Premium Sev 1, paged)"] = await step(
        sev1_handle,
        lambda: client.start_workflow(
            TicketWorkflow.run, sev1, id=workflow_id_for(sev1.ticket_id), task_queue=task_queue
        ),
    )
    return counts


async def raw_paths(client: Client, task_queue: str) -> dict[str, int]:
    workflow_id = f"bench-raw-{uuid.uuid4().hex[:12]}"
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    counts = {
        "intake": await step(
            handle,
            lambda: client.start_workflow(
                RawDeadline.run, DUE_AFTER.total_seconds(), id=workflow_id, task_queue=task_queue
            ),
        )
    }
    before = await history_length(handle)
    await handle.result()
    counts["deadline (timer + one activity)"] = await history_length(handle) - before
    return counts


async def measure() -> tuple[dict[str, int], dict[str, int]]:
    with tempfile.TemporaryDirectory(prefix="escalator-events-") as tmp:
        env = await start_dev_server(Path(tmp))
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'escalator.db'}")
        try:
            await migrate(engine)
            queue = f"bench-events-{uuid.uuid4().hex[:8]}"
            raw_queue = f"{queue}-raw"
            tickets = build_worker(env.client, make_sessionmaker(engine), Settings(task_queue=queue))
            raw = Worker(env.client, task_queue=raw_queue, workflows=[RawDeadline], activities=[raw_record])
            async with tickets, raw:
                ticket_counts, raw_counts = await asyncio.gather(
                    ticket_paths(env.client, queue), raw_paths(env.client, raw_queue)
                )
            return ticket_counts, raw_counts
        finally:
            await engine.dispose()
            await env.shutdown()


def run() -> list[Result]:
    tickets, raw = asyncio.run(measure())
    deadline = raw["deadline (timer + one activity)"]
    results = [
        Result(
            name="events",
            metric=f"history events: {path}",
            subject=float(count),
            baseline=float(deadline if path in ("75% warning", "breach") else raw["intake"]),
            unit="events",
            notes=[
                "baseline: the raw deadline workflow's "
                + ("timer + one activity" if path in ("75% warning", "breach") else "intake")
                + "; acknowledgement and comment have no raw counterpart (shown against its intake)"
            ],
        )
        for path, count in tickets.items()
    ]
    return results
