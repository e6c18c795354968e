"""One step of a ticket in one activity (issue 18): `notify_and_record` sends the step's notices,
then writes its record with their deliveries, and holds back nothing the separate activities
did not. Real receivers (tests/receivers.py) and a real SQLite read model; the workflow's side
(unsent notices handed to `deliver_notification`, a record the database could not take handed
to `record_ticket`) is in tests/test_notifications.py, tests/test_fault_drills.py and the
replay histories (tests/test_replay.py)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.delivery import NotificationDelivery
from activities.read_model import TicketReadModel
from activities.step import TicketSteps
from runtime.settings import Settings
from store.db import OutboxNotification, make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.quarantine import quarantined_records
from store.tickets import get_ticket_row, get_timeline
from tests.factories import opened_ticket
from tests.receivers import HttpReceiver, SmtpReceiver
from workflows import machine
from workflows.changes import ChangeTracker
from workflows.enums import NoticeChannel
from workflows.models import StepOutcome, TicketStep
from workflows.ticket import RECORD_QUARANTINED, delivery_for

ROUTING_KEY = "connectsoft-routing-key"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'step.db'}")
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    yield sessionmaker
    await engine.dispose()


def settings_for(smtp: SmtpReceiver, http: HttpReceiver) -> Settings:
    return Settings(
        smtp_url=smtp.url,
        chat_webhook_url=http.url_for("/chat"),
        pager_url=http.url_for("/pager"),
        pager_routing_key=ROUTING_KEY,
    )


def steps_on(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> TicketSteps:
    return TicketSteps(NotificationDelivery(sessionmaker, settings), TicketReadModel(sessionmaker))


def intake_step(ticket_id: str) -> TicketStep:
    """A Premium Sev 1 intake, as the workflow would take it: a page, chats to the levels and
    leadership, the customer's email, and the first record."""
    received = datetime.now(UTC).replace(microsecond=0)
    opened = opened_ticket("acme", 1, received).model_copy(update={"ticket_id": ticket_id})
    outcome = machine.open_ticket(opened)
    pending = ChangeTracker.starting(continued=False).next_record(
        outcome.state, received, outcome.notifications, []
    )
    deliveries = [delivery_for(outcome.state, n) for n in outcome.notifications if n.channel is not None]
    return TicketStep(record=pending.record, deliveries=deliveries)


async def outbox(
    sessionmaker: async_sessionmaker[AsyncSession], ticket_id: str
) -> dict[str, OutboxNotification]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxNotification).where(OutboxNotification.ticket_id == ticket_id)
        )
        return {row.key: row for row in rows}


async def test_a_step_sends_every_notice_then_records_them_with_the_ticket_in_one_activity(
    db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    step = intake_step("t-step")
    channels = Counter(each.notification.channel for each in step.deliveries)
    assert channels[NoticeChannel.PAGER] == 1 and channels[NoticeChannel.CHAT] >= 2
    assert channels[NoticeChannel.EMAIL] >= 1

    outcome = await ActivityEnvironment().run(
        steps_on(db, settings_for(smtp_receiver, http_receiver)).notify_and_record, step
    )

    assert outcome.written and outcome.unsent == []
    assert sorted(each.key for each in outcome.delivered) == sorted(
        d.notification.key for d in step.deliveries
    )
    assert all(each.recorded and each.delivered_at is not None for each in outcome.delivered)
    # Sent once each, on its channel, with its idempotency key.
    assert len(http_receiver.deliveries("/pager")) == 1
    assert len(http_receiver.deliveries("/chat")) == channels[NoticeChannel.CHAT]
    await smtp_receiver.wait_for(channels[NoticeChannel.EMAIL])
    # Recorded with the ticket: its row, its events, and each notice delivered in the outbox.
    rows = await outbox(db, "t-step")
    async with db() as session:
        row = await get_ticket_row(session=session, ticket_id="t-step")
        events = await get_timeline(session=session, ticket_id="t-step")
    assert row is not None and row.severity == 1
    assert [event.seq for event in events] == [event.seq for event in step.record.events]
    assert set(rows) == {each.key for each in step.record.notifications}
    for delivery in step.deliveries:
        kept = rows[delivery.notification.key]
        assert kept.delivered_at is not None and kept.attempts == 1, kept.key
        assert kept.sink in ("pagerduty", "webhook", "smtp"), kept.key


async def test_a_notice_that_fails_comes_back_unsent_and_holds_back_nothing_else(
    db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    http_receiver.fail_next("/pager", 500)
    step = intake_step("t-unsent")
    page = next(d.notification.key for d in step.deliveries if d.notification.channel == NoticeChannel.PAGER)

    outcome = await ActivityEnvironment().run(
        steps_on(db, settings_for(smtp_receiver, http_receiver)).notify_and_record, step
    )

    # The page goes to its own activity's retries; the rest went out and the record is written.
    assert outcome.unsent == [page] and outcome.written
    assert {each.key for each in outcome.delivered} == {d.notification.key for d in step.deliveries} - {page}
    assert len(http_receiver.deliveries("/chat")) == len(outcome.delivered) - sum(
        each.channel == NoticeChannel.EMAIL for each in outcome.delivered
    )
    rows = await outbox(db, "t-unsent")
    assert rows[page].delivered_at is None and rows[page].attempts == 1 and rows[page].last_error
    assert all(rows[each.key].delivered_at is not None for each in outcome.delivered)


async def test_with_the_database_away_the_notices_go_out_and_the_record_is_left_to_record_ticket(
    smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    # Nothing listens on this port: every database call fails at once.
    unreachable = make_sessionmaker(make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none"))
    step = intake_step("t-away")

    outcome = await ActivityEnvironment().run(
        steps_on(unreachable, settings_for(smtp_receiver, http_receiver)).notify_and_record, step
    )

    assert not outcome.written
    # The page and the chats went out all the same (emails need the contacts: their own retries).
    assert len(http_receiver.deliveries("/pager")) == 1
    sent = {each.key for each in outcome.delivered}
    assert any(
        d.notification.channel == NoticeChannel.PAGER and d.notification.key in sent for d in step.deliveries
    )
    assert all(not each.recorded for each in outcome.delivered)
    assert set(outcome.unsent) | sent == {d.notification.key for d in step.deliveries}


async def test_a_retried_step_sends_nothing_it_recorded_as_sent(
    db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    steps = steps_on(db, settings_for(smtp_receiver, http_receiver))
    env = ActivityEnvironment()
    step = intake_step("t-again")
    first = await env.run(steps.notify_and_record, step)
    requests = len(http_receiver.requests)
    emails = len(smtp_receiver.messages)
    # The worker died after the step's transaction, before Temporal heard: it runs again.
    env.info = dataclasses.replace(env.info, attempt=2)
    again = await env.run(steps.notify_and_record, step)
    assert again.written and again.unsent == []
    assert {(o.key, o.delivered_at) for o in again.delivered} == {
        (o.key, o.delivered_at) for o in first.delivered
    }
    assert len(http_receiver.requests) == requests and len(smtp_receiver.messages) == emails


async def test_a_record_refused_on_its_data_is_quarantined_and_what_was_sent_is_still_recorded(
    db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    async with db.begin() as session:
        await session.execute(
            text(
                "CREATE TRIGGER refuse_opening BEFORE INSERT ON ticket_events WHEN NEW.kind = 'opened' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )
    step = intake_step("t-refused")

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            steps_on(db, settings_for(smtp_receiver, http_receiver)).notify_and_record, step
        )

    refused = raised.value
    assert refused.type == RECORD_QUARANTINED and refused.non_retryable
    (told,) = refused.details
    assert isinstance(told, StepOutcome)
    assert {each.key for each in told.delivered} == {d.notification.key for d in step.deliveries}
    # Sent once; the deliveries landed in a transaction of their own, the record in quarantine.
    assert all(each.recorded for each in told.delivered)
    assert len(http_receiver.deliveries("/pager")) == 1
    rows = await outbox(db, "t-refused")
    assert all(rows[each.key].delivered_at is not None for each in told.delivered)
    async with db() as session:
        kept = await quarantined_records(session=session, ticket_id="t-refused")
        assert await get_ticket_row(session=session, ticket_id="t-refused") is None
    assert len(kept) == 1
