"""The console's queue reads the read model alone (issue 18): each row carries the clock the
queue counts down, written by `record_ticket` from the ticket's state. These tests hold it to
what the live workflows say, across the clock states the queue tells apart: a warning, a
breached response nobody answered, a Basic (indicative) time, a ticket waiting on the
customer and one with no live clock. Dev server, real worker, SQLite read model;
the HTTP queue is tests/test_console.py's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.console.queue import ALL, QueueFilters, queue
from api.console.views import ClockSignal, Signal, next_clock
from store.tickets import get_timeline
from tests.factories import SUPPORT, opened_ticket
from tests.fixtures_temporal import WorkerFactory
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.wait_on_customer import WaitOnCustomer
from workflows.enums import Channel, TicketStatus
from workflows.models import TicketState
from workflows.ticket import TicketWorkflow

ON_CALL = Channel.ON_CALL


async def recorded(
    handle: WorkflowHandle[Any, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> TicketState:
    """The ticket's state once the read model holds every event it has now (the check runs
    once per history event, no polling): its row is as of the same record."""
    state: TicketState = await handle.query(TicketWorkflow.state)
    async for _ in handle.fetch_history_events(wait_new_event=True):
        async with sessionmaker() as session:
            events = await get_timeline(session=session, ticket_id=state.ticket_id)
        if len(events) >= state.next_seq - 1:
            return state
    raise AssertionError("the workflow closed before its events were recorded")


def live_order(state: TicketState) -> tuple[Any, ...]:
    """The queue's order as the live clocks give it (DESIGN.md §4, README "Queue"): an awaited
    breach or the nearest live binding clock, then indicative times, then no live clock,
    newest first; the ticket id breaks ties."""
    view = next_clock(state)
    rank = 2 if view is None else (1 if view.indicative else 0)
    due = view.due_at.timestamp() if view is not None else 0.0
    return (rank, due, -state.received_at.timestamp(), state.ticket_id)


def shown(clock: ClockSignal | None) -> tuple[Any, ...] | None:
    """What a queue row shows of its clock."""
    if clock is None:
        return None
    fields = ("name", "owner", "level", "binding", "due_at", "warn_at", "status", "awaited")
    return tuple(getattr(clock, name) for name in fields)


async def test_the_queue_from_the_read_model_shows_and_orders_what_the_live_clocks_say(
    dev_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    async with ticket_worker(dev_env.client) as tickets:
        now = datetime.now(UTC).replace(microsecond=0)
        # Received a while ago, so the clocks stand where they would by now (time comes first:
        # the workflow fires what fell due before it started). Premium Sev 1: first response in
        # 1 h, 24x7, warned at 45 min.
        breached = await tickets.start(opened_ticket("acme", 1, now - timedelta(minutes=70), channel=ON_CALL))
        warned = await tickets.start(opened_ticket("acme", 1, now - timedelta(minutes=50), channel=ON_CALL))
        basic = await tickets.start(opened_ticket("initech", 2, now - timedelta(minutes=40)))
        running = await tickets.start(opened_ticket("umbrella", 3, now - timedelta(minutes=30)))
        waiting = await tickets.start(opened_ticket("globex", 3, now - timedelta(minutes=20)))
        await waiting.execute_update("acknowledge", Acknowledge(actor=SUPPORT))
        await waiting.execute_update("wait-on-customer", WaitOnCustomer(actor=SUPPORT))
        answered = await tickets.start(opened_ticket("acme", 2, now - timedelta(minutes=10), channel=ON_CALL))
        await answered.execute_update("acknowledge", Acknowledge(actor=SUPPORT))

        handles: list[WorkflowHandle[Any, Any]] = [breached, basic, waiting, running, warned, answered]
        states: dict[str, TicketState] = {}
        for handle in handles:
            state = await recorded(handle, workflow_db)
            states[state.ticket_id] = state
        async with workflow_db() as session:
            found = await queue(session=session, principal=SUPPORT, filters=QueueFilters(status=ALL))

        # Every state the queue tells apart is here.
        by_handle = {handle.id: states[handle.id.removeprefix("ticket-")] for handle in handles}
        signal = {
            handle.id: view.signal(now) if (view := next_clock(by_handle[handle.id])) else None
            for handle in handles
        }
        assert signal[breached.id] == Signal.BREACHED and by_handle[breached.id].next_clock_awaited
        assert signal[warned.id] == Signal.WARNING
        assert signal[basic.id] in (Signal.INDICATIVE, Signal.INDICATIVE_PAST_DUE)
        assert by_handle[waiting.id].status == TicketStatus.WAITING_ON_CUSTOMER and signal[waiting.id] is None
        assert signal[running.id] == Signal.ON_TRACK

        # The same rows, in the same order, each showing the clock its workflow counts down.
        assert [item.row.ticket_id for item in found.items] == sorted(
            states, key=lambda t: live_order(states[t])
        )
        assert found.total == len(states)
        for item in found.items:
            assert shown(item.next) == shown(next_clock(states[item.row.ticket_id])), item.row.ticket_id
