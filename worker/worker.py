"""The Temporal worker for the `tickets` task queue."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

import policies
from activities.delivery import DeliveryRecords, NotificationDelivery
from activities.holidays import pin_public_holidays
from activities.incident_notices import IncidentNotices
from activities.incidents import IncidentReadModel, incident_activities
from activities.read_model import TicketReadModel
from activities.step import TicketSteps
from runtime.settings import Settings
from store import published_policies
from store.db import make_engine, make_sessionmaker
from workflows.incident import IncidentWorkflow
from workflows.incident_watch import IncidentWatchWorkflow
from workflows.ticket import TicketDeliveries, TicketWorkflow

log = logging.getLogger(__name__)

# Worker defaults take new workflow tasks at only ~30-60/s, so a burst of ticket starts
# backs up (DESIGN.md 9). More pollers, and a larger share on the non-sticky queue where
# new workflows arrive. Re-measure with `make bench` before changing.
WORKFLOW_TASK_POLLS = 8
NONSTICKY_TO_STICKY_POLL_RATIO = 0.5
ACTIVITY_TASK_POLLS = 8
# Lets in-flight activities (read-model upserts, notifications) finish on shutdown.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)

# Worker memory per cached open ticket: RSS growth holding 200 open tickets after their first
# step, `python -m bench workflow`, 214-222 KiB on 2026-11-27 (the no-op workflow: 105-114).
CACHED_TICKET_BYTES = 224 * 1024
# The share of the memory the worker may use that its cache of open tickets may fill. A ticket
# not in the cache replays its whole history on every deadline, which is what makes breach
# notices late when thousands fall due together; a cached one does not.
CACHE_MEMORY_SHARE = 0.25
# Never fewer than the SDK's default.
MIN_CACHED_WORKFLOWS = 1000
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def usable_memory() -> int:
    """Bytes this process may use: physical memory, or the container's limit when lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in _CGROUP_LIMITS:
        try:
            limit = path.read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            return min(physical, int(limit))
    return physical


def max_cached_workflows(memory: int | None = None) -> int:
    """How many open tickets the worker keeps cached: its share of `memory` (default: the
    usable memory) over what one cached ticket measured."""
    budget = (usable_memory() if memory is None else memory) * CACHE_MEMORY_SHARE
    return max(MIN_CACHED_WORKFLOWS, int(budget // CACHED_TICKET_BYTES))


# TicketDeliveries carries a closed ticket's last notices on when a sink is down; an incident
# (DESIGN.md §13) and the watchers that open incidents automatically run on the same task queue
# as their tickets.
TICKET_WORKFLOWS: list[type] = [TicketWorkflow, TicketDeliveries, IncidentWorkflow, IncidentWatchWorkflow]


def ticket_activities(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings | None = None
) -> list[Callable[..., Any]]:
    """Every activity the ticket workflows call: one step (its notices sent, then its record)
    where a ticket can, else one record per flush and one delivery per notice (through the
    sinks in `settings`; none: the log); holidays when a ticket needs more; and what a major
    incident's workflow calls for its digests, its page and its row."""
    settings = settings or Settings()
    delivery = NotificationDelivery(sessionmaker, settings)
    read_model = TicketReadModel(sessionmaker)
    incident_notices = IncidentNotices(sessionmaker, settings)
    return [
        TicketSteps(delivery, read_model).notify_and_record,
        read_model.record_ticket,
        pin_public_holidays,
        delivery.deliver_notification,
        DeliveryRecords(sessionmaker).record_deliveries,
        incident_notices.flush_incident_digests,
        incident_notices.settle_incident_page,
        IncidentReadModel(sessionmaker).record_incident,
    ]


def build_worker(
    client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Worker:
    policies.install()
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=TICKET_WORKFLOWS,
        activities=[*ticket_activities(sessionmaker, settings), *incident_activities(client, sessionmaker)],
        max_concurrent_workflow_task_polls=WORKFLOW_TASK_POLLS,
        nonsticky_to_sticky_poll_ratio=NONSTICKY_TO_STICKY_POLL_RATIO,
        max_concurrent_activity_task_polls=ACTIVITY_TASK_POLLS,
        max_cached_workflows=max_cached_workflows(),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.sticky_timeout_seconds),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def freeze_start_up() -> None:
    """Move what start-up made (modules, the SDK, pydantic schemas, the policy versions) out of
    the collector's reach, so a full collection walks only what came after: the cached tickets.
    `python -m bench.gc_freeze` measured a full collection at 0.22x (59 against 271 ms, 1,000
    cached tickets; docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


async def run_worker(
    client: Client,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (forever without one), then shut down gracefully.

    The database schema must already exist (`escalator migrate`).
    """
    engine = make_engine(settings.database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        worker = build_worker(client, sessionmaker, settings)
        stop = stop or asyncio.Event()
        # Published policy versions, so that a ticket that pinned one runs here (its first
        # workflow task is retried until this has loaded it).
        await published_policies.refresh(sessionmaker)
        refresh = asyncio.create_task(
            published_policies.keep_installed(sessionmaker, settings.policy_refresh_seconds, stop),
            name="policy-refresh",
        )
        # Digests of notices that waited a whole window with no incident workflow flushing them.
        digests = asyncio.create_task(
            IncidentNotices(sessionmaker, settings).run(stop), name="incident-digests"
        )
        freeze_start_up()
        running = asyncio.create_task(worker.run(), name="temporal-worker")
        stopping = asyncio.create_task(stop.wait(), name="worker-stop")
        log.info("worker polling task queue %r on %s", settings.task_queue, client.namespace)
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            refresh.cancel()
            digests.cancel()
            if not running.done():
                await worker.shutdown()
        # Re-raises a fatal worker error; returns quietly after a requested stop.
        await running
    finally:
        await engine.dispose()
