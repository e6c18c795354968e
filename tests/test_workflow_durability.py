"""A restart loses nothing and duplicates nothing; a long ticket continues as new intact."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from runtime.codec import data_converter
from runtime.settings import Settings
from store.db import OutboxNotification
from store.tickets import get_timeline
from tests.factories import DEMO_TERMS, SUPPORT, TEST_OVER, next_local, opened_ticket
from tests.fixtures_api import wait_for_event
from tests.fixtures_temporal import events_so_far, skip_to
from tests.history_records import records
from worker.worker import TICKET_WORKFLOWS, ticket_activities
from workflows import machine, search_attributes
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.enums import ClockKind, ClockStatus, CoverageCalendar, EscalationTrigger
from workflows.models import TicketEvent, TicketState, workflow_id_for
from workflows.terms import ResponseTarget, TargetOverrides
from workflows.ticket import TicketWorkflow


def ticket_worker(
    client: Client, task_queue: str, db: async_sessionmaker[AsyncSession], *, cached: int = 1000
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=TICKET_WORKFLOWS,
        activities=ticket_activities(db),
        max_cached_workflows=cached,
    )


async def test_a_ticket_survives_a_worker_restart_and_records_each_event_once(
    time_skipping_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    env = time_skipping_env
    task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
    received = (await env.get_current_time()).replace(microsecond=0)
    opened = opened_ticket("acme", 1, received, channel="on_call")
    # No cache, so no sticky queue: the test server does not time out a dead worker's sticky
    # queue the way a real cluster does after a few seconds.
    async with ticket_worker(env.client, task_queue, workflow_db, cached=0):
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=task_queue
        )
        assert (await handle.query(TicketWorkflow.state)).level == 3
        # Stop between events: the test server skips time only once nothing is in flight.
        await env.sleep(timedelta(minutes=1))

    # A brand-new worker, with an empty cache, replays the history and carries on.
    async with ticket_worker(env.client, task_queue, workflow_db):
        await env.sleep(received + timedelta(hours=1, seconds=1) - await env.get_current_time())
        state = await handle.query(TicketWorkflow.state)
        assert state.sla_breached and state.level == 4
        history = await handle.fetch_history()
        await handle.execute_update(TicketWorkflow.close, TEST_OVER)
        await handle.result()

    async with workflow_db() as session:
        timeline = await get_timeline(session=session, ticket_id=opened.ticket_id)
        outbox_rows = await session.scalar(
            select(func.count()).where(OutboxNotification.ticket_id == opened.ticket_id)
        )
    seqs = [e.seq for e in timeline]
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, none missing
    assert {"opened", "critical_incident", "sla_breached", "escalated", "closed"} <= {
        e.kind for e in timeline
    }
    # Every notification a record activity carried is queued once: the restart re-ran nothing.
    carried = [note for record in records(history.events) for note in record["notifications"]]
    assert len(carried) == len({note["key"] for note in carried}) > 0
    assert outbox_rows is not None and outbox_rows >= len(carried)


async def acknowledged(handle: WorkflowHandle[TicketWorkflow, TicketState]) -> TicketState:
    """The ticket once the new worker has applied the acknowledgement signal."""
    state = await handle.query(TicketWorkflow.state)
    while state.acknowledged_at is None:
        state = await handle.query(TicketWorkflow.state)  # each query waits on the worker
    return state


def assert_breach_then_late_response(state: TicketState, events: list[TicketEvent], due: datetime) -> None:
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and (first.status, first.stopped_at) == (ClockStatus.BREACHED, due)
    assert state.sla_breached
    kinds = [e.kind for e in events]
    assert kinds.index("sla_breached") < kinds.index("acknowledged")
    breach = next(e for e in events if e.kind == "sla_breached")
    ack = next(e for e in events if e.kind == "acknowledged")
    assert breach.at == due <= ack.at
    assert "late first response" in ack.summary


async def test_an_acknowledgement_signalled_while_the_worker_is_down_at_the_deadline_is_late(
    time_skipping_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    """The deadline's timer fires with no worker up, then the acknowledgement arrives.

    The new worker gets both in one task, and signals run before timers: only time-first
    judging in the machine makes this a breach and a late response rather than "met".
    """
    env = time_skipping_env
    task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
    new_york = ZoneInfo("America/New_York")
    # A Standard Sev 1 filed on a Tuesday 10:00 in New York is due 4 extended hours later,
    # and is already at L2, the top of its ladder, so nothing climbs in between.
    filed = next_local(1, 10, new_york, await env.get_current_time())
    while filed.date() in set(opened_ticket("globex", 1, filed).entitlement.holidays):
        filed += timedelta(days=7)
    await skip_to(env, filed)
    opened = opened_ticket("globex", 1, filed.astimezone(UTC))
    async with ticket_worker(env.client, task_queue, workflow_db, cached=0):
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=task_queue
        )
        due = (await handle.query(TicketWorkflow.state)).response_due
        assert due == filed + timedelta(hours=4)
        # Past the 75% warning, so the workflow's only timer left is the deadline itself.
        await skip_to(env, filed + timedelta(hours=3, minutes=1))
        assert any(e.kind == "sla_warning" for e in await events_so_far(handle, workflow_db))

    # No worker: the deadline's timer fires, then the acknowledgement arrives.
    # With a task pending the server stops skipping: the clock runs on in real time, so
    # going a second past the deadline takes a second.
    await skip_to(env, due + timedelta(seconds=1))
    fired = [
        e for e in (await handle.fetch_history()).events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    ]
    assert fired[-1].event_time.ToDatetime(UTC) >= due
    await handle.signal(TicketWorkflow.acknowledge_signal, Acknowledge(actor=SUPPORT))

    async with ticket_worker(env.client, task_queue, workflow_db, cached=0):
        state = await acknowledged(handle)
        assert_breach_then_late_response(state, await events_so_far(handle, workflow_db), due)
        await handle.execute_update(TicketWorkflow.close, TEST_OVER)
        await handle.result()

    async with workflow_db() as session:
        timeline = await get_timeline(session=session, ticket_id=opened.ticket_id)
    assert [e.kind for e in timeline if e.kind in ("sla_breached", "acknowledged")] == [
        "sla_breached",
        "acknowledged",
    ]


async def test_an_acknowledgement_30_hours_late_is_late_even_if_no_worker_ever_woke(
    time_skipping_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    """The worker was down from intake on: its first task sees the ticket 30 hours old."""
    env = time_skipping_env
    task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
    now = (await env.get_current_time()).replace(microsecond=0)
    # A Standard contract whose Sev 1 is due in 1 h 24x7, so the deadline is the same whatever
    # the weekday; Sev 1 goes to L2, the top of Standard's ladder, so nothing climbs.
    one_hour = ResponseTarget(minutes=60, calendar=CoverageCalendar.ALWAYS, label="1 h 24x7")
    terms = DEMO_TERMS["globex"].model_copy(update={"overrides": TargetOverrides(response={"1": one_hour})})
    opened = opened_ticket("globex", 1, now - timedelta(hours=30), terms=terms)
    due = opened.received_at + timedelta(hours=1)
    handle = await env.client.start_workflow(
        TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=task_queue
    )
    await handle.signal(TicketWorkflow.acknowledge_signal, Acknowledge(actor=SUPPORT))
    async with ticket_worker(env.client, task_queue, workflow_db, cached=0):
        state = await acknowledged(handle)
        events = await events_so_far(handle, workflow_db)
        assert_breach_then_late_response(state, events, due)
        assert next(e for e in events if e.kind == "acknowledged").at >= now
        await handle.execute_update(TicketWorkflow.close, TEST_OVER)
        await handle.result()


@pytest_asyncio.fixture
async def small_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new after 60 history events, not thousands."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=search_attributes.ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"],
    )
    yield env
    await env.shutdown()


async def test_a_long_ticket_continues_as_new_without_losing_state(
    small_history_env: WorkflowEnvironment, workflow_db: async_sessionmaker[AsyncSession]
) -> None:
    env = small_history_env
    task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
    received = (await env.get_current_time()).replace(microsecond=0)
    opened = opened_ticket("acme", 3, received)
    async with ticket_worker(env.client, task_queue, workflow_db):
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=task_queue
        )
        first_run = (await handle.describe()).run_id
        for n in range(30):
            await handle.execute_update(TicketWorkflow.comment, Comment(actor=SUPPORT, body=f"note {n}"))
        # The first run hands over once it is idle after the history grew past the limit.
        first = env.client.get_workflow_handle(handle.id, run_id=first_run)
        await wait_for_event(
            first, lambda e: e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )
        state = await handle.query(TicketWorkflow.state)
        assert (await handle.describe()).run_id != first_run
        # It handed over idle: every event recorded, so none rides along in the new run's input,
        # and the new run numbers on from the old one (opened + 30 comments).
        assert state.events == [] and state.next_seq == 32
        # The new run keeps every clock as it was: same start, same deadline.
        initial = machine.open_ticket(opened).state
        assert state.response_due == initial.response_due
        assert state.clocks[0].started_at == received
        # ... and still enforces the rules.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                TicketWorkflow.escalate,
                Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.STRATEGIC_ISSUE),
            )
        await handle.execute_update(TicketWorkflow.close, TEST_OVER)
        await handle.result()

    async with workflow_db() as session:
        timeline = await get_timeline(session=session, ticket_id=opened.ticket_id)
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert [e.kind for e in timeline].count("commented") == 30
