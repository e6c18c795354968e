"""The whole stack in-process for API tests: the FastAPI app (with its lifespan), a real
worker with the SQL activities, the read model on SQLite, and the dev server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from runtime.settings import Settings
from store import tickets as read_model
from store.console_sessions import hash_session_id
from store.db import ApiKey, ConsoleSession, IdempotencyRecord, make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import DEMO_KEYS, hash_secret, principal_for_secret, seed_demo_keys
from worker.worker import build_worker
from workflows.models import TicketEvent


@dataclass
class Stack:
    http: httpx.AsyncClient
    client: Client
    sessionmaker: async_sessionmaker[AsyncSession]

    def handle(self, ticket_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(f"ticket-{ticket_id}")

    @staticmethod
    def as_(secret: str) -> dict[str, str]:
        """Headers that act as the key `secret`, e.g. `stack.as_("dev-admin")` (DEMO_KEYS)."""
        return {"Authorization": f"Bearer {secret}"}


def console_session_id(secret: str) -> str:
    """The console session each stack opens for a demo key (`console_as` in the tests), so a
    test acts in the console as that key without posting the sign-in form first."""
    return f"test-console-session-{secret}"


async def seed_console_sessions(session: AsyncSession) -> None:
    now = datetime.now(UTC)
    for secret in DEMO_KEYS:
        key_id = await session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_secret(secret)))
        if (
            key_id is not None
            and await session.get(ConsoleSession, hash_session_id(console_session_id(secret))) is None
        ):
            session.add(
                ConsoleSession(
                    id_hash=hash_session_id(console_session_id(secret)),
                    key_id=key_id,
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                )
            )
    await session.commit()


@asynccontextmanager
async def running_stack(
    dev_env: WorkflowEnvironment, engine: AsyncEngine, **configured: Any
) -> AsyncIterator[Stack]:
    """API + worker + read model, wired the way `make up` wires them, on `engine`'s database
    (migrated and seeded here), with any other `configured` settings (the notification sinks).
    Each stack has its own task queue, so stacks never take each other's work. Rate limits
    and the report cache are off unless `configured` sets them: a module's tests share keys and
    ask for the same reports around changes (tests/test_abuse_bounds.py tests both)."""
    unbounded = {f"rate_limit_{kind}_per_minute": 0.0 for kind in ("writes", "reports", "console")}
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"tickets-{uuid.uuid4().hex[:8]}",
        **(unbounded | {"report_cache_seconds": 0.0} | configured),
    )
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
        await seed_demo_keys(session=session)
        await seed_console_sessions(session)
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        async with build_worker(dev_env.client, sessionmaker, settings):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                yield Stack(http, dev_env.client, sessionmaker)


@asynccontextmanager
async def sqlite_stack(dev_env: WorkflowEnvironment, path: Path, **configured: Any) -> AsyncIterator[Stack]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with running_stack(dev_env, engine, **configured) as running:
            yield running
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """A fresh stack on a fresh SQLite database, for one test."""
    async with sqlite_stack(dev_env, tmp_path / "api.db") as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def module_stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One stack shared by a module's tests: for tables of many small cases, each on its own
    tickets, where a fresh app and worker per case would cost more than the case."""
    async with sqlite_stack(dev_env, tmp_path_factory.mktemp("module-stack") / "api.db") as running:
        yield running


@pytest_asyncio.fixture
async def db_stack(db_engine: AsyncEngine, dev_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    """A stack on each database backend: SQLite, and PostgreSQL when CI sets it up
    (`db_engine` is a fresh, migrated schema of its own)."""
    async with running_stack(dev_env, db_engine) as running:
        yield running


_ACTIVITY_ENDED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


def _quiet(events: list[HistoryEvent]) -> bool:
    """Asleep on a timer, no activity running, no workflow task to come."""
    running: set[int] = set()
    task_pending = timer_seen = False
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            running.add(event.event_id)
        elif kind in _ACTIVITY_ENDED:
            running.discard(getattr(event, _ACTIVITY_ENDED[kind]).scheduled_event_id)
            task_pending = True  # the workflow wakes for it
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_pending = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task_pending = False
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timer_seen = True
    return timer_seen and not running and not task_pending


async def wait_until_quiet(handle: WorkflowHandle[Any, Any]) -> None:
    """Block (long poll, no sleeping) until the workflow is asleep on its deadline timer with
    no activity running: its intake recorded and every notice delivered.

    A workflow task's commands land together, after its completion event; the long poll may
    hand them over one by one, so a quiet-looking moment is checked against the whole history.
    """
    seen: list[HistoryEvent] = []
    async for event in handle.fetch_history_events(wait_new_event=True):
        seen.append(event)
        if _quiet(seen) and _quiet(list((await handle.fetch_history()).events)):
            return
    raise AssertionError("the workflow closed before it was quiet")


async def wait_for_event(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[HistoryEvent], bool]
) -> HistoryEvent:
    """Block on the workflow's history (long poll, no sleeping) until an event matches."""
    async for event in handle.fetch_history_events(wait_new_event=True):
        if predicate(event):
            return event
    raise AssertionError("the workflow closed before the awaited event")


def completed_activity(*names: str) -> Callable[[HistoryEvent], bool]:
    """An activity of one of these names completed."""
    scheduled: dict[int, str] = {}

    def predicate(event: HistoryEvent) -> bool:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            return scheduled.get(sid) in names
        return False

    return predicate


def record_written() -> Callable[[HistoryEvent], bool]:
    """A record of the ticket was written: a `record_ticket`, or a step that sent and recorded."""
    return completed_activity("record_ticket", "notify_and_record")


async def history_types(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    return [EventType.Name(e.event_type) for e in history.events]


async def settled_state(stack: Stack, ticket_id: str) -> dict[str, Any]:
    """The ticket's state (the `state` query, as JSON) once it has recorded every event it has.

    The workflow drops an event from its state once the read model holds it, so an empty
    `events` means nothing is pending. No polling: checked once per history event.
    """
    handle = stack.handle(ticket_id)
    state: dict[str, Any] = await handle.query("state")
    if not state["events"]:
        return state
    async for _ in handle.fetch_history_events(wait_new_event=True):
        state = await handle.query("state")
        if not state["events"]:
            return state
    raise AssertionError("the workflow closed before its events were recorded")


async def recorded_timeline(stack: Stack, ticket_id: str) -> list[TicketEvent]:
    """Every event of the ticket so far, from the read model, once all are recorded."""
    await settled_state(stack, ticket_id)
    async with stack.sessionmaker() as session:
        return await read_model.get_timeline(session=session, ticket_id=ticket_id)


async def wait_until_recorded(stack: Stack, ticket_id: str) -> None:
    """Wait until the read model holds every event the ticket has now (no polling: the
    check runs once per new history event, and each sync adds one)."""
    handle = stack.handle(ticket_id)
    recorded_by_now = (await handle.query("state"))["next_seq"] - 1
    async for _ in handle.fetch_history_events(wait_new_event=True):
        async with stack.sessionmaker() as session:
            events = await read_model.get_timeline(session=session, ticket_id=ticket_id)
        if len(events) >= recorded_by_now:
            return
    raise AssertionError("the workflow closed before its events were recorded")


async def assert_nothing_filed(stack: Stack, idempotency_key: str) -> None:
    """A refused intake with this Idempotency-Key started no ticket.

    Ticket ids are random (issue 17 §2), so the test cannot name the ticket it fears; but a
    keyed intake claims its key, with the id it starts, before it starts anything, and every
    refusal comes before the claim. No claim, no ticket.
    """
    async with stack.sessionmaker() as session:
        claims = await session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.key == idempotency_key)
        )
    assert claims == 0


async def actor_of(stack: Stack, secret: str) -> str:
    """The audit actor of the key with this secret: `role:name (key_...)` (issue 17 §4)."""
    async with stack.sessionmaker() as session:
        principal = await principal_for_secret(session, secret)
    assert principal is not None
    return str(principal)
