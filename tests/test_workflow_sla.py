"""TicketWorkflow on the time-skipping test server: hours and days pass in milliseconds."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.read_model import get_ticket_row, get_timeline
from tests.factories import SUPPORT, close_when_done, engineer, next_local, opened_ticket
from tests.fixtures_temporal import WorkerFactory, events_so_far, skip_to
from workflows.models import (
    Acknowledge,
    ClockKind,
    ClockStatus,
    Escalate,
    EscalationTrigger,
    TicketStatus,
)
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
