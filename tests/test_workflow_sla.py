"""TicketWorkflow on the time-skipping test server: hours and days pass in milliseconds."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from store.db import Ticket, TicketClockRecord
from store.tickets import get_ticket_row, get_timeline
from tests.factories import SUPPORT, close_when_done, engineer, next_local, opened_ticket
from tests.fixtures_temporal import WorkerFactory, events_so_far, skip_to
from tests.history_records import recording
from tests.history_records import records as recorded_records
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.enums import ClockKind, ClockStatus, EscalationTrigger, TicketStatus
from workflows.ticket import TicketWorkflow


async def test_premium_sev1_unacknowledged_for_an_hour_is_breached_and_escalated(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket("acme", 1, received, channel="on_call")
        handle = await tickets.start(opened)
        assert (await handle.query(TicketWorkflow.state)).level == 3

        await skip_to(env, received + timedelta(minutes=59, seconds=59))
        before = await handle.query(TicketWorkflow.state)
        assert not before.sla_breached
        assert before.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.WARNED  # type: ignore[union-attr]

        await skip_to(env, received + timedelta(hours=1, seconds=1))
        after = await handle.query(TicketWorkflow.state)
        assert after.sla_breached
        assert after.level == 4
        breach = next(e for e in await events_so_far(handle, workflow_db) if e.kind == "sla_breached")
        assert breach.at == received + timedelta(hours=1)

        # The read model caught up with the breach and the escalation.
        async with workflow_db() as session:
            row = await get_ticket_row(session=session, ticket_id=opened.ticket_id)
            timeline = await get_timeline(session=session, ticket_id=opened.ticket_id)
        assert row is not None and row.sla_breached and row.level == 4
        assert [e.kind for e in timeline][-2:] == ["sla_breached", "escalated"]
        # ... and so did what the reports count: each clock, and the ticket's rollups.
        async with workflow_db() as session:
            ticket = await session.get(Ticket, opened.ticket_id)
            clocks = await session.scalars(
                select(TicketClockRecord)
                .where(TicketClockRecord.ticket_id == opened.ticket_id)
                .order_by(TicketClockRecord.clock_no)
            )
            outcomes = [(c.kind, c.level, c.status) for c in clocks]
        assert outcomes == [
            ("first_response", 3, "breached"),
            ("escalation_ack", 3, "breached"),
            ("escalation_ack", 4, "running"),
        ]
        assert ticket is not None and ticket.connectsoft_responses_breached == 1
        assert (ticket.escalations_l3, ticket.escalations_l4) == (1, 1)
        await close_when_done(handle)


async def test_premium_sev1_acknowledged_at_59_minutes_is_met(
    time_skipping_env: WorkflowEnvironment, ticket_worker: WorkerFactory
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("acme", 1, received, channel="on_call"))
        await skip_to(env, received + timedelta(minutes=59))
        acked = await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=SUPPORT))
        assert acked.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET  # type: ignore[union-attr]

        await skip_to(env, received + timedelta(hours=3))
        state = await handle.query(TicketWorkflow.state)
        first = state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None and first.status == ClockStatus.MET
        assert first.stopped_at is not None and first.stopped_at <= received + timedelta(
            minutes=59, seconds=1
        )
        assert not state.sla_breached and state.level == 3
        await close_when_done(handle)


async def test_standard_sev2_filed_tuesday_10_breaches_wednesday_10_local(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    new_york = ZoneInfo("America/New_York")
    async with ticket_worker(env.client) as tickets:
        tuesday_10 = next_local(1, 10, new_york, await env.get_current_time())
        holidays = set(opened_ticket("globex", 2, tuesday_10).entitlement.holidays)
        while {tuesday_10.date(), tuesday_10.date() + timedelta(days=1)} & holidays:
            tuesday_10 += timedelta(days=7)  # keep the case about hours, not holidays
        await skip_to(env, tuesday_10)
        opened = opened_ticket("globex", 2, tuesday_10.astimezone(UTC))
        handle = await tickets.start(opened)
        wednesday_10 = tuesday_10 + timedelta(days=1)
        assert (await handle.query(TicketWorkflow.state)).response_due == wednesday_10

        # 8 hours of wall clock later it is Tuesday 18:00: closed time, not a breach.
        await skip_to(env, tuesday_10 + timedelta(hours=8, minutes=1))
        assert not (await handle.query(TicketWorkflow.state)).sla_breached

        await skip_to(env, wednesday_10 + timedelta(seconds=1))
        state = await handle.query(TicketWorkflow.state)
        assert state.sla_breached
        breach = next(e for e in await events_so_far(handle, workflow_db) if e.kind == "sla_breached")
        assert breach.at == wednesday_10
        assert breach.at.astimezone(new_york).hour == 10
        await close_when_done(handle)


async def test_basic_ticket_never_breaches_however_long_it_waits(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("initech", 1, received))
        await skip_to(env, received + timedelta(days=30))
        state = await handle.query(TicketWorkflow.state)
        first = state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None and not first.target.binding
        assert first.status == ClockStatus.RUNNING
        assert not state.sla_breached
        assert state.level == 2  # Sev 1 on a non-Premium tier goes to L2 at intake, and stays
        events = await events_so_far(handle, workflow_db)
        assert [e.kind for e in events][:2] == ["opened", "critical_incident"]
        assert not any(e.kind in ("sla_warning", "sla_breached", "escalated") for e in events)
        await close_when_done(handle)


async def test_signals_apply_the_same_actions_and_ignore_refused_ones(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("globex", 3, received))
        # Above the Standard entitlement: a signal cannot be refused, so it is ignored.
        await handle.signal(
            TicketWorkflow.escalate_signal,
            Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING),
        )
        await handle.signal(TicketWorkflow.acknowledge_signal, Acknowledge(actor=engineer(1, "l1-via-crm")))
        state = await handle.query(TicketWorkflow.state)
        assert state.level == 1
        assert state.status == TicketStatus.ACKNOWLEDGED
        assert state.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET  # type: ignore[union-attr]
        events = await events_so_far(handle, workflow_db)
        assert "acknowledged" in [e.kind for e in events]
        assert not any(e.kind == "escalated" for e in events)
        await close_when_done(handle)


async def recorded(handle: WorkflowHandle[Any, Any], *, times: int) -> None:
    """Until the workflow has written its read-model record `times` times (the record runs
    beside the ticket, so a step waits for the write, not for the next timer)."""
    scheduled: set[int] = set()
    done = 0
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if recording(event):
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done += event.activity_task_completed_event_attributes.scheduled_event_id in scheduled
            if done == times:
                return
    raise AssertionError("the workflow ended first")


async def test_each_record_carries_only_the_clocks_that_changed_since_the_last(
    dev_env: WorkflowEnvironment, ticket_worker: WorkerFactory
) -> None:
    # Real time (the dev server): waiting on the history must not let hours skip by.
    env = dev_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("acme", 3, received))
        # Each step once the one before is recorded.
        await recorded(handle, times=1)
        await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=SUPPORT))
        await recorded(handle, times=2)
        await handle.execute_update(TicketWorkflow.comment, Comment(actor=SUPPORT, body="on it"))
        await recorded(handle, times=3)
        await close_when_done(handle)
        history = await handle.fetch_history()

    records = recorded_records(history.events)
    carried = [[(c["clock_no"], c["clock"]["status"]) for c in r["clocks"]] for r in records]
    # Intake: the first response clock; the acknowledgement meets it; a comment changes no
    # clock; closing changes none either (met stays met).
    assert carried == [[(0, "running")], [(0, "met")], [], []]
    # The facts travel only when they change (or with an escalation, which they recount).
    facts = [r["facts"] and r["facts"]["acknowledged_at"] is not None for r in records]
    assert facts == [None, True, None, None]
