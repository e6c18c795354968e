"""Policy semantics inside the running workflow, on the time-skipping server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from store.db import OutboxNotification
from tests.factories import SUPPORT, close_when_done, opened_ticket
from tests.fixtures_temporal import WorkerFactory, events_so_far, skip_to
from workflows import search_attributes
from workflows.actions.change_severity import ChangeSeverity
from workflows.enums import ClockKind, Severity
from workflows.ticket import TicketWorkflow

BERLIN = ZoneInfo("Europe/Berlin")


def next_date(after: datetime, month: int, day: int) -> date:
    """The next `month`-`day` at least a week after `after`."""
    year = after.year
    while date(year, month, day) < (after + timedelta(days=7)).date():
        year += 1
    return date(year, month, day)


async def test_premium_sev3_filed_friday_16_berlin_is_due_monday_16(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        now = await env.get_current_time()
        friday = (now + timedelta(days=7)).astimezone(BERLIN).date()
        friday += timedelta(days=(4 - friday.weekday()) % 7)
        opened = opened_ticket("acme", 3, datetime.combine(friday, datetime.min.time(), BERLIN))
        holidays = set(opened.entitlement.holidays)
        while friday in holidays or friday + timedelta(days=3) in holidays:
            friday += timedelta(days=7)
        filed = datetime(friday.year, friday.month, friday.day, 16, tzinfo=BERLIN)
        await skip_to(env, filed)
        handle = await tickets.start(opened_ticket("acme", 3, filed.astimezone(UTC)))
        monday_16 = datetime(friday.year, friday.month, friday.day, 16, tzinfo=BERLIN) + timedelta(days=3)
        state = await handle.query(TicketWorkflow.state)
        assert state.response_due == monday_16

        # The weekend passes without a breach; Monday 16:00 breaches and escalates to L2.
        await skip_to(env, monday_16 - timedelta(minutes=1))
        assert not (await handle.query(TicketWorkflow.state)).sla_breached
        await skip_to(env, monday_16 + timedelta(seconds=1))
        state = await handle.query(TicketWorkflow.state)
        assert state.sla_breached and state.level == 2
        events = await events_so_far(handle, workflow_db)
        assert next(e for e in events if e.kind == "sla_breached").at == monday_16
        await close_when_done(handle)


async def test_christmas_holidays_are_skipped_for_a_german_customer(
    own_time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    # A server of its own: the session's clock may have been skipped past 2100, where the
    # `holidays` package has no calendars (CI saw 2120 and an empty holiday list).
    env = own_time_skipping_env
    async with ticket_worker(env.client) as tickets:
        # A year whose 24 December is a Monday or Tuesday, so that 25 to 27 December fall on
        # weekdays and only the holidays can make the clock skip the 25th and 26th.
        eve = next_date(await env.get_current_time(), 12, 24)
        while eve.weekday() > 1:
            eve = date(eve.year + 1, 12, 24)
        filed = datetime(eve.year, 12, 24, 15, tzinfo=BERLIN)
        await skip_to(env, filed)
        opened = opened_ticket("acme", 3, filed.astimezone(UTC))
        assert {date(eve.year, 12, 25), date(eve.year, 12, 26)} <= set(opened.entitlement.holidays)
        handle = await tickets.start(opened)
        # 8 business hours: 2 h on the 24th (15:00-17:00), 6 h on the 27th (09:00-15:00).
        due = datetime(eve.year, 12, 27, 15, tzinfo=BERLIN)
        assert (await handle.query(TicketWorkflow.state)).response_due == due

        await skip_to(env, datetime(eve.year, 12, 26, 23, tzinfo=BERLIN))
        assert not (await handle.query(TicketWorkflow.state)).sla_breached
        await skip_to(env, due + timedelta(seconds=1))
        events = await events_so_far(handle, workflow_db)
        assert next(e for e in events if e.kind == "sla_breached").at == due
        await close_when_done(handle)


async def test_sev3_raised_to_sev1_after_30_minutes_is_due_one_hour_after_intake(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("acme", 3, received))
        await skip_to(env, received + timedelta(minutes=30))
        raised = await handle.execute_update(
            TicketWorkflow.change_severity,
            ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="all tenants down"),
        )
        assert raised.response_due == received + timedelta(hours=1)
        assert raised.level == 3  # a critical incident escalates immediately

        await skip_to(env, received + timedelta(hours=1, seconds=1))
        state = await handle.query(TicketWorkflow.state)
        breach = next(e for e in await events_so_far(handle, workflow_db) if e.kind == "sla_breached")
        assert breach.at == received + timedelta(hours=1)
        assert state.level == 4
        first = state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None and first.started_at == received
        await close_when_done(handle)


async def test_partner_sev1_breach_is_the_partners_and_never_reaches_the_customer(
    time_skipping_env: WorkflowEnvironment,
    ticket_worker: WorkerFactory,
    workflow_db: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket("contoso", 1, received)
        handle = await tickets.start(opened)
        await skip_to(env, received + timedelta(hours=1, seconds=1))
        state = await handle.query(TicketWorkflow.state)
        assert state.partner_sla_breached and not state.sla_breached
        assert state.level == 1  # the partner's miss does not climb ConnectSoft's ladder
        attributes = (await handle.describe()).typed_search_attributes
        assert attributes.get(search_attributes.PARTNER_SLA_BREACHED) is True
        assert attributes.get(search_attributes.SLA_BREACHED) is False
        await close_when_done(handle)

    async with workflow_db() as session:
        notices = (
            await session.scalars(
                select(OutboxNotification).where(OutboxNotification.ticket_id == opened.ticket_id)
            )
        ).all()
    audiences = {(n.audience, n.page) for n in notices}
    assert ("partner_on_call", True) in audiences and ("support_l2", False) in audiences
    assert not any(n.audience == "customer" for n in notices)
