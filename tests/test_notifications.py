"""Notices reach people (issue 9): routing, pages that follow the ticket, delivery once.

Real receivers on 127.0.0.1 (tests/receivers.py: aiosmtpd, and an HTTP receiver that collapses
a repeated Idempotency-Key the way PagerDuty collapses a dedup key), a real worker and the real
Temporal servers; nothing of the sending code is mocked.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.delivery import NotificationDelivery
from runtime.settings import Settings
from store import tickets as read_model
from store.db import OutboxNotification, make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from tests.factories import SUPPORT, TEST_OVER, opened_ticket, partner
from tests.fixtures_api import Stack, sqlite_stack
from tests.receivers import HttpReceiver, SmtpReceiver
from worker.worker import TICKET_WORKFLOWS, ticket_activities
from workflows import machine, policy
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.close import Close
from workflows.actions.resolve import Resolve
from workflows.enums import Audience, ClockKind, EventKind, NoticeChannel, PageAction
from workflows.models import Delivery, Notification, TicketState, workflow_id_for
from workflows.ticket import CLOSE_GRACE, TicketWorkflow

ROUTING_KEY = "connectsoft-routing-key"
PARTNER_KEY = "northwind-routing-key"


def sinks(smtp: SmtpReceiver, http: HttpReceiver, **more: Any) -> dict[str, Any]:
    return {
        "smtp_url": smtp.url,
        "chat_webhook_url": http.url_for("/chat"),
        "pager_url": http.url_for("/pager"),
        "pager_routing_key": ROUTING_KEY,
        "public_url": "https://support.connectsoft.example",
        **more,
    }


# --- The machine decides who hears, routing decides how --------------------------------------


def test_every_audience_has_exactly_one_channel() -> None:
    for rules in policy.registered().values():
        routed = [audience for route in rules.routes for audience in route.audiences]
        assert sorted(routed) == sorted(Audience)
        assert rules.channel_for(Audience.CUSTOMER) == NoticeChannel.EMAIL
        assert rules.channel_for(Audience.SUPPORT_L2) == NoticeChannel.CHAT
        assert rules.channel_for(Audience.ON_CALL) == NoticeChannel.PAGER


def test_a_premium_sev1_pages_on_call_and_the_page_follows_the_ticket() -> None:
    opened = opened_ticket("acme", 1, received := _received())
    outcome = machine.open_ticket(opened)
    state = outcome.state
    pages = [n for n in outcome.notifications if n.page]
    assert [(n.audience, n.page_action, n.channel) for n in pages] == [
        (Audience.ON_CALL, PageAction.TRIGGER, NoticeChannel.PAGER)
    ]
    told = {n.audience: n.channel for n in outcome.notifications if not n.page}
    assert told[Audience.ENGINEERING_L3] == NoticeChannel.CHAT
    assert told[Audience.LEADERSHIP_L4] == NoticeChannel.CHAT
    assert told[Audience.CUSTOMER] == NoticeChannel.EMAIL
    assert state.pages == {Audience.ON_CALL: PageAction.TRIGGER}

    acked = machine.apply(state, Acknowledge(actor=SUPPORT), received + timedelta(minutes=5))
    assert [(n.audience, n.page_action) for n in acked.notifications if n.page] == [
        (Audience.ON_CALL, PageAction.ACKNOWLEDGE)
    ]
    # Acknowledging twice pages nobody twice.
    resolved = machine.apply(
        acked.state, Resolve(actor=SUPPORT, resolution="fixed"), received + timedelta(hours=1)
    )
    assert [(n.audience, n.page_action) for n in resolved.notifications if n.page] == [
        (Audience.ON_CALL, PageAction.RESOLVE)
    ]
    assert resolved.state.pages == {}


def test_closing_an_unacknowledged_ticket_resolves_its_page() -> None:
    opened = opened_ticket("acme", 1, received := _received())
    state = machine.open_ticket(opened).state
    closed = machine.apply(
        state, Close(actor=SUPPORT, note="duplicate of another"), received + timedelta(minutes=1)
    )
    assert [(n.audience, n.page_action) for n in closed.notifications if n.page] == [
        (Audience.ON_CALL, PageAction.RESOLVE)
    ]
    assert closed.state.pages == {}


@pytest.mark.parametrize("customer", ["globex", "initech", "umbrella"])
def test_no_page_below_premium(customer: str) -> None:
    outcome = machine.open_ticket(opened_ticket(customer, 1, _received()))
    assert not [n for n in outcome.notifications if n.page]
    assert outcome.state.pages == {}


def test_a_breach_at_level_3_pages_on_call_and_one_at_level_1_does_not() -> None:
    # Premium Sev 2 starts at L1: its first-response breach climbs to L2 and pages nobody.
    received = _received()
    state = machine.open_ticket(opened_ticket("acme", 2, received)).state
    due = state.clock(ClockKind.FIRST_RESPONSE)
    assert due is not None
    breached = machine.advance(state, due.due_at)
    assert not [n for n in breached.notifications if n.page]
    # A Premium Sev 1 is at L3 from intake: an unanswered acknowledgement there pages.
    critical = machine.open_ticket(opened_ticket("acme", 1, received)).state
    critical.pages.clear()  # as if the intake page were resolved by hand
    first = critical.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None
    missed = machine.advance(critical, first.due_at)
    pages = [n for n in missed.notifications if n.page]
    assert [(n.audience, n.page_action) for n in pages] == [(Audience.ON_CALL, PageAction.TRIGGER)]
    assert "L3" in pages[0].subject


def test_on_a_partner_ticket_the_partner_hears_what_the_customer_would() -> None:
    outcome = machine.open_ticket(opened_ticket("contoso", 1, received := _received()))
    audiences = {n.audience for n in outcome.notifications}
    assert Audience.CUSTOMER not in audiences
    assert Audience.PARTNER in audiences
    # Its own on-call is paged; ConnectSoft's L2 is told, not paged.
    assert {(n.audience, n.page_action) for n in outcome.notifications if n.page} == {
        (Audience.PARTNER_ON_CALL, PageAction.TRIGGER)
    }
    # The partner's acknowledgement settles the partner's page, not ConnectSoft's.
    acked = machine.apply(outcome.state, Acknowledge(actor=partner()), received + timedelta(minutes=3))
    assert [(n.audience, n.page_action) for n in acked.notifications if n.page] == [
        (Audience.PARTNER_ON_CALL, PageAction.ACKNOWLEDGE)
    ]


def _received() -> datetime:
    return datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


async def test_policy_shows_the_routing(stack: Stack) -> None:
    document = (await stack.http.get("/policy")).json()
    routes = document["routes"]
    channels = {audience: route["channel"] for route in routes for audience in route["audiences"]}
    assert channels["customer"] == "email" and channels["partner"] == "email"
    assert channels["support_l2"] == "chat" and channels["on_call"] == "pager"
    assert document["page_breach_levels"] == [3, 4]
    assert document["page_sev1_tiers"] == ["premium"]


# --- End to end on the dev server -----------------------------------------------------------


async def file(stack: Stack, customer: str, severity: int, product: str = "identity") -> str:
    body = {
        "customer_id": customer,
        "title": "Sign-in <down> for everyone",
        "description": "Every sign-in returns HTTP 500.",
        "severity": severity,
        "product": product,
        "channel": "on_call" if severity == 1 else "email",
        "category": "incident",
    }
    response = await stack.http.post("/tickets", json=body, headers=stack.as_("dev-admin"))
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


async def delivered(stack: Stack, ticket_id: str, count: int) -> list[dict[str, Any]]:
    """The ticket's delivery records, once `count` of them say delivered (waits on the
    workflow's history: each delivery is an activity completing)."""
    handle = stack.handle(ticket_id)
    done = 0
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done += 1
            answer = await stack.http.get(
                f"/tickets/{ticket_id}/notifications", headers=stack.as_("dev-support")
            )
            if answer.status_code == 404:
                continue  # delivered before the ticket's first record: not listed yet
            rows = answer.json()["notifications"]
            if sum(row["delivered_at"] is not None for row in rows) >= count:
                return list(rows)
    raise AssertionError(f"the ticket ended with fewer than {count} deliveries")


async def test_a_premium_sev1_pages_tells_l3_and_l4_and_emails_the_customer_then_settles_the_page(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    async with sqlite_stack(dev_env, tmp_path / "api.db", **sinks(smtp_receiver, http_receiver)) as stack:
        ticket_id = await file(stack, "acme", 1)
        pages = await http_receiver.wait_for(1, path="/pager")
        assert pages[0].body == {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": ticket_id,
            "payload": pages[0].body["payload"],
            "links": pages[0].body["links"],
        }
        assert pages[0].body["payload"]["severity"] == "critical"
        assert pages[0].idempotency_key == f"{ticket_id}/2-on_call"
        chats = await http_receiver.wait_for(
            lambda got: (
                {"#engineering-l3", "#leadership-l4"} <= {r.body.get("channel") for r in got if r.body}
            ),
            path="/chat",
        )
        assert all("Sign-in <down>" in str(r.body) for r in chats)
        mail = await smtp_receiver.wait_for(lambda got: any("ops@acme.example" in m.rcpt_tos for m in got))
        to_customer = [m for m in mail if "ops@acme.example" in m.rcpt_tos]
        assert to_customer[0].message["Subject"] == "We have your ticket: Sign-in <down> for everyone"
        # The due time, in the customer's zone.
        assert "(Europe/Berlin)" in to_customer[0].text
        assert "&lt;down&gt;" in to_customer[0].html

        acked = await stack.http.post(
            f"/tickets/{ticket_id}/acknowledge", json={}, headers=stack.as_("dev-support")
        )
        assert acked.status_code == 200, acked.text
        await http_receiver.wait_for(2, path="/pager")
        resolved = await stack.http.post(
            f"/tickets/{ticket_id}/resolve",
            json={"resolution": "rolled back"},
            headers=stack.as_("dev-support"),
        )
        assert resolved.status_code == 200, resolved.text
        pages = await http_receiver.wait_for(3, path="/pager")
        assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [
            ("trigger", ticket_id),
            ("acknowledge", ticket_id),
            ("resolve", ticket_id),
        ]
        # Acknowledge and resolve carry only what Events v2 wants.
        assert set(pages[1].body) == {"routing_key", "event_action", "dedup_key"}

        rows = await delivered(stack, ticket_id, 9)
        by_key = {row["key"]: row for row in rows}
        assert by_key["2-on_call"]["sink"] == "pagerduty"
        assert by_key["2-engineering_l3"]["recipients"] == ["#engineering-l3"]
        assert by_key["1-customer"]["sink"] == "smtp"
        assert by_key["1-customer"]["recipients"] == ["ops@acme.example"]
        assert all(row["attempts"] == 1 and row["last_error"] is None for row in rows if row["delivered_at"])
        # Each notice once: nothing the receivers took twice.
        assert len(http_receiver.requests) == len(http_receiver.deliveries())


async def test_a_partner_ticket_emails_the_partner_and_never_the_customer(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    async with sqlite_stack(dev_env, tmp_path / "api.db", **sinks(smtp_receiver, http_receiver)) as stack:
        ticket_id = await file(stack, "contoso", 1, product="partner_solution")
        await stack.http.post(
            f"/tickets/{ticket_id}/close", json={"note": "test over"}, headers=stack.as_("dev-admin")
        )
        await stack.handle(ticket_id).result()
        rows = (
            await stack.http.get(f"/tickets/{ticket_id}/notifications", headers=stack.as_("dev-admin"))
        ).json()["notifications"]
        assert rows and all(row["delivered_at"] for row in rows), rows
        recipients = {address for message in smtp_receiver.messages for address in message.rcpt_tos}
        assert "support@northwind.example" in recipients
        # No pager key of its own: the partner's on-call is paged by email.
        paged = [m for m in smtp_receiver.messages if "oncall@northwind.example" in m.rcpt_tos]
        assert paged and paged[0].message["Subject"].startswith("[PAGE] ")
        assert "ops@contoso.example" not in recipients
        assert not [r for r in http_receiver.requests if r.path == "/pager"]


async def test_the_partner_on_call_is_paged_on_its_own_routing_key(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    configured = sinks(smtp_receiver, http_receiver, partner_pager_routing_keys={"northwind": PARTNER_KEY})
    async with sqlite_stack(dev_env, tmp_path / "api.db", **configured) as stack:
        ticket_id = await file(stack, "contoso", 1, product="partner_solution")
        pages = await http_receiver.wait_for(1, path="/pager")
        assert pages[0].body["routing_key"] == PARTNER_KEY
        assert pages[0].body["dedup_key"] == ticket_id
        await stack.http.post(
            f"/tickets/{ticket_id}/close", json={"note": "test over"}, headers=stack.as_("dev-admin")
        )
        pages = await http_receiver.wait_for(2, path="/pager")
        assert [p.body["event_action"] for p in pages] == ["trigger", "resolve"]


async def test_with_no_sinks_notices_go_to_the_outbox_and_the_log(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="escalator.notify")
    ticket_id = await file(stack, "acme", 1)
    rows = await delivered(stack, ticket_id, 5)
    assert {row["sink"] for row in rows if row["delivered_at"]} == {"log"}
    assert any(f"PAGE {ticket_id} [on_call]" in record.getMessage() for record in caplog.records)
    await stack.http.post(
        f"/tickets/{ticket_id}/close", json={"note": "test over"}, headers=stack.as_("dev-admin")
    )


# --- Retries, deadlines and a sink that stays down (time-skipping) ---------------------------


@asynccontextmanager
async def sending_worker(
    env: WorkflowEnvironment, tmp_path: Path, **configured: Any
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    task_queue = f"notify-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=task_queue, **configured)
    try:
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=TICKET_WORKFLOWS,
            activities=ticket_activities(sessionmaker, settings),
        ):
            yield task_queue, sessionmaker
    finally:
        await engine.dispose()


async def outbox(
    sessionmaker: async_sessionmaker[AsyncSession], ticket_id: str
) -> dict[str, OutboxNotification]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxNotification).where(OutboxNotification.ticket_id == ticket_id)
        )
        return {row.key: row for row in rows}


async def test_a_sink_failing_three_times_delivers_once_and_the_breach_fires_on_time(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    smtp_receiver: SmtpReceiver,
    http_receiver: HttpReceiver,
) -> None:
    env = time_skipping_env
    http_receiver.fail_next("/chat", 500, times=3)
    async with sending_worker(env, tmp_path, **sinks(smtp_receiver, http_receiver)) as (queue, db):
        received = (await env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket("acme", 2, received)
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=queue
        )
        state: TicketState = await handle.query(TicketWorkflow.state)
        first = state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None
        # Skip past the deadline: the retries (2 s, 4 s, 8 s backoff) and the breach both happen.
        await env.sleep(first.due_at - received + timedelta(minutes=1))
        await handle.execute_update("close", TEST_OVER)
        final = await handle.result()
        rows = await outbox(db, opened.ticket_id)

    chat = [r for r in http_receiver.requests if r.idempotency_key == f"{opened.ticket_id}/1-support_l1"]
    assert [r.status for r in chat] == [500, 500, 500, 202]
    assert (
        len([d for d in http_receiver.deliveries("/chat") if d.idempotency_key == chat[0].idempotency_key])
        == 1
    )
    assert rows["1-support_l1"].attempts == 4
    assert rows["1-support_l1"].delivered_at is not None
    # The breach was recorded at the deadline, to the second, whatever the sink was doing.
    breach = next(
        event for event in await _timeline(db, opened.ticket_id) if event["kind"] == EventKind.SLA_BREACHED
    )
    assert breach["at"] == first.due_at
    assert final.sla_breached


async def _timeline(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: str) -> list[dict[str, Any]]:
    async with sessionmaker() as session:
        events = await read_model.get_timeline(session=session, ticket_id=ticket_id)
    return [{"kind": e.kind, "at": e.at} for e in events]


async def test_a_sink_down_for_hours_never_keeps_a_ticket_open(
    own_time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    smtp_receiver: SmtpReceiver,
    http_receiver: HttpReceiver,
) -> None:
    env = own_time_skipping_env
    # Down through every attempt the ticket makes within its closing grace (at 0, 2, 6, 14, 30
    # and 62 s of backoff), and the first attempt after it.
    http_receiver.fail_next("/chat", 503, times=7)
    async with sending_worker(env, tmp_path, **sinks(smtp_receiver, http_receiver)) as (queue, db):
        received = (await env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket("globex", 3, received)
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=queue
        )
        await handle.execute_update("close", TEST_OVER)
        await handle.result()
        closed = await handle.describe()
        assert closed.status == WorkflowExecutionStatus.COMPLETED
        # It closed within the grace, not when the sink came back.
        assert closed.close_time is not None and closed.close_time - received <= CLOSE_GRACE + timedelta(
            seconds=5
        )
        carried = env.client.get_workflow_handle(f"{workflow_id_for(opened.ticket_id)}-deliveries")
        assert (await carried.describe()).status == WorkflowExecutionStatus.RUNNING
        # The sink comes back within a few more attempts (how many the ticket made within its
        # grace depends on how busy the machine is): skip time until the carrier is done.
        for _ in range(40):
            if (await carried.describe()).status == WorkflowExecutionStatus.COMPLETED:
                break
            await env.sleep(timedelta(seconds=30))
        assert (await carried.describe()).status == WorkflowExecutionStatus.COMPLETED
        outcomes = await carried.result()
        rows = await outbox(db, opened.ticket_id)
        # Both paths replay: the ticket that handed its notice on, and the carrier.
        replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
        types = [event.event_type for event in (await handle.fetch_history()).events]
        assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED in types
        for each in (handle, carried):
            replayed = await replayer.replay_workflow(
                await each.fetch_history(), raise_on_replay_failure=False
            )
            assert replayed.replay_failure is None
    assert [o["key"] if isinstance(o, dict) else o.key for o in outcomes] == ["1-support_l1"]
    assert rows["1-support_l1"].delivered_at is not None
    assert len([d for d in http_receiver.deliveries("/chat")]) == 1


# --- Delivered once: the record before the acknowledgement ----------------------------------


def _delivery(ticket_id: str) -> Delivery:
    return Delivery(
        notification=Notification(
            key="1-customer",
            ticket_id=ticket_id,
            audience=Audience.CUSTOMER,
            subject="We have your ticket: Login down",
            body="[Sev 2][Premium] acme / identity: Login down\nTicket opened",
            channel=NoticeChannel.EMAIL,
        ),
        customer_id="acme",
        headline="[Sev 2][Premium] acme / identity: Login down",
        severity=2,
        level=1,
        tier="Premium",
    )


class WorkerCrashed(BaseException):
    """The process dies: nothing after this point runs, nothing is reported to Temporal."""


@pytest.fixture
async def seeded_db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'once.db'}")
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    yield sessionmaker
    await engine.dispose()


async def test_a_retry_after_the_send_was_recorded_never_emails_twice(
    seeded_db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver
) -> None:
    delivery = NotificationDelivery(seeded_db, Settings(smtp_url=smtp_receiver.url))
    env = ActivityEnvironment()
    first = await env.run(delivery.deliver_notification, _delivery("t-once"))
    assert first.recorded and first.delivered_at is not None
    # The worker died after recording, before Temporal heard: the activity runs again.
    env.info = dataclasses.replace(env.info, attempt=2)
    again = await env.run(delivery.deliver_notification, _delivery("t-once"))
    assert again.delivered_at == first.delivered_at
    assert len(smtp_receiver.messages) == 1


async def test_a_crash_between_the_send_and_its_record_can_email_twice_with_one_message_id(
    seeded_db: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver
) -> None:
    """The at-least-once bound: SMTP takes no idempotency key, so a crash after the server
    accepted the message and before the outbox row says so sends it once more on the next
    attempt. One extra copy per such crash, with the same Message-ID (clients collapse it)."""
    delivery = NotificationDelivery(seeded_db, Settings(smtp_url=smtp_receiver.url))

    async def crash(_: Delivery) -> None:
        raise WorkerCrashed

    delivery.after_send = crash
    env = ActivityEnvironment()
    with pytest.raises(WorkerCrashed):
        await env.run(delivery.deliver_notification, _delivery("t-crash"))
    delivery.after_send = None
    env.info = dataclasses.replace(env.info, attempt=2)
    outcome = await env.run(delivery.deliver_notification, _delivery("t-crash"))
    assert outcome.attempts == 2 and outcome.recorded
    messages = await smtp_receiver.wait_for(2)
    assert len(messages) == 2
    assert messages[0].message["Message-ID"] == messages[1].message["Message-ID"]
    # A third attempt (the second's result lost) sends nothing more.
    env.info = dataclasses.replace(env.info, attempt=3)
    await env.run(delivery.deliver_notification, _delivery("t-crash"))
    assert len(smtp_receiver.messages) == 2


async def test_a_page_goes_out_while_the_database_refuses_connections(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    # Nothing listens on this port: every database call fails at once.
    unreachable = make_sessionmaker(make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none"))
    settings = Settings(pager_url=http_receiver.url_for("/pager"), pager_routing_key=ROUTING_KEY)
    delivery = NotificationDelivery(unreachable, settings)
    page = _delivery("t-db-down")
    page = page.model_copy(
        update={
            "notification": page.notification.model_copy(
                update={
                    "key": "2-on_call",
                    "audience": Audience.ON_CALL,
                    "channel": NoticeChannel.PAGER,
                    "page": True,
                    "page_action": PageAction.TRIGGER,
                }
            )
        }
    )
    outcome = await ActivityEnvironment().run(delivery.deliver_notification, page)
    assert outcome.delivered_at is not None and outcome.sink == "pagerduty"
    # Not recorded: the workflow writes it with its next record_ticket.
    assert outcome.recorded is False
    assert len(http_receiver.deliveries("/pager")) == 1
