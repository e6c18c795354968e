"""Notices while tickets are linked to a major incident (issue 19, DESIGN.md §13).

The machine makes each linked ticket's notices, naming the incident; the real delivery
activity and digest flusher send them to real receivers (tests/receivers.py: aiosmtpd, and an
HTTP receiver that collapses a repeated Idempotency-Key as PagerDuty and a deduplicating chat
relay do), over a real database. ConnectSoft's own audiences get one digest per (incident,
audience, window) and one page per incident; customers keep one email per ticket; the outbox
keeps every notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.delivery import NotificationDelivery
from activities.incident_notices import IncidentNotices
from runtime.settings import Settings
from store.db import IncidentDigest, OutboxNotification, make_engine, make_sessionmaker
from store.demo_catalog import seed_demo_catalog
from tests.factories import TEST_OVER, engineer, opened_ticket
from tests.fixtures_api import sqlite_stack
from tests.incident_support import SUPPORT, incident_handle, open_incident, ticket_until
from tests.receivers import HttpReceiver, ReceivedRequest, SmtpReceiver
from tests.test_notifications import ROUTING_KEY, outbox, sending_worker, sinks
from workflows import machine
from workflows.actions.acknowledge import Acknowledge
from workflows.enums import Audience, ClockKind, EventKind, NoticeChannel, PageAction
from workflows.incident_notices import (
    Grouping,
    IncidentDigestFlush,
    IncidentPageSettle,
    digest_text,
    grouping_for,
    window_start,
)
from workflows.models import Delivery, TicketState, workflow_id_for
from workflows.ticket import TicketWorkflow, delivery_for

INCIDENT = "INC-12"
WINDOW = 60.0
# Level 4 acknowledges whatever level a breach climbed to.
LEAD = engineer(4)


class FakeClock:
    """The flusher's clock, moved by the test: digest windows without waiting for them."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def next_window(self) -> None:
        self.now = window_start(self.now, WINDOW) + timedelta(seconds=WINDOW, milliseconds=1)


def _received() -> datetime:
    return datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def linked_state(customer: str = "acme", severity: int = 1) -> TicketState:
    """A ticket just filed, then linked to the incident: its notices from now on name it."""
    state = machine.open_ticket(opened_ticket(customer, severity, _received())).state
    state.incident_id = INCIDENT
    return state


def breach_and_acknowledge(state: TicketState) -> list[Delivery]:
    """The first response breached, then acknowledged: the deliveries the workflow would run."""
    first = state.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None
    breached = machine.advance(state, first.due_at, in_place=True)
    deliveries = [delivery_for(state, notice) for notice in breached.notifications]
    acked = machine.apply(state, Acknowledge(actor=LEAD), first.due_at + timedelta(minutes=5), in_place=True)
    return deliveries + [delivery_for(state, notice) for notice in acked.notifications]


# --- The machine names the incident; the rule says which notices are grouped ---------------------


def test_a_linked_tickets_notices_name_the_incident_and_what_raised_them() -> None:
    deliveries = breach_and_acknowledge(linked_state())
    notices = [d.notification for d in deliveries]
    assert notices and all(n.incident_id == INCIDENT for n in notices)
    breach = [n for n in notices if n.event_kind == EventKind.SLA_BREACHED]
    assert breach and all(n.clock_kind == ClockKind.FIRST_RESPONSE for n in breach)
    by_audience = {(n.audience, n.page_action): grouping_for(n) for n in notices}
    assert by_audience[(Audience.ENGINEERING_L3, None)] == Grouping.DIGEST
    assert by_audience[(Audience.ON_CALL, PageAction.TRIGGER)] == Grouping.INCIDENT_PAGE
    assert by_audience[(Audience.ON_CALL, PageAction.ACKNOWLEDGE)] == Grouping.INCIDENT_PAGE
    assert by_audience[(Audience.CUSTOMER, None)] is None


def test_an_unlinked_ticket_and_a_partners_notices_are_never_grouped() -> None:
    unlinked = machine.open_ticket(opened_ticket("acme", 1, _received()))
    assert all(n.incident_id is None and grouping_for(n) is None for n in unlinked.notifications)
    partner_ticket = linked_state("contoso")
    first = partner_ticket.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None
    notices = machine.advance(partner_ticket, first.due_at).notifications
    partners = [n for n in notices if n.audience in (Audience.PARTNER, Audience.PARTNER_ON_CALL)]
    assert partners and all(grouping_for(n) is None for n in partners)


def test_the_digest_reads_like_the_issue_says() -> None:
    text = digest_text(
        incident_id=INCIDENT,
        title="identity outage",
        counts={(EventKind.SLA_BREACHED, ClockKind.FIRST_RESPONSE): 1240},
        window_seconds=60,
        open_tickets=3100,
        linked_tickets=4020,
    )
    assert (
        text
        == "INC-12 identity outage: 1,240 first responses breached in the last 60 s; 3,100 open, 4,020 linked"
    )
    mixed = digest_text(
        incident_id=INCIDENT,
        title=None,
        counts={(EventKind.ESCALATED, None): 1, (EventKind.SLA_WARNING, ClockKind.RESOLUTION): 3},
        window_seconds=30,
    )
    assert mixed == "Incident INC-12: 3 SLA warnings (resolution), 1 escalation in the last 30 s"


# --- Delivery and digests, over a real database and real receivers --------------------------------


@dataclasses.dataclass
class Senders:
    delivery: NotificationDelivery
    notices: IncidentNotices
    clock: FakeClock
    sessionmaker: async_sessionmaker[AsyncSession]

    async def deliver(self, deliveries: list[Delivery]) -> None:
        """Each notice's activity, in order (the first trigger is the first ticket's)."""
        env = ActivityEnvironment()
        for each in deliveries:
            await env.run(self.delivery.deliver_notification, each)

    async def deliver_at_once(self, deliveries: list[Delivery]) -> None:
        """The activities of a storm, side by side as a worker's activity slots run them."""
        slots = asyncio.Semaphore(16)

        async def run(each: Delivery) -> None:
            async with slots:
                await ActivityEnvironment().run(self.delivery.deliver_notification, each)

        await asyncio.gather(*(run(each) for each in deliveries))

    async def flush(self, **request: Any) -> list[str]:
        sent = await ActivityEnvironment().run(
            self.notices.flush_incident_digests, IncidentDigestFlush(incident_id=INCIDENT, **request)
        )
        return sent.keys

    async def rows(self) -> list[OutboxNotification]:
        async with self.sessionmaker() as session:
            return list(await session.scalars(select(OutboxNotification)))


@pytest.fixture
async def senders(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> AsyncIterator[Senders]:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    settings = Settings(**sinks(smtp_receiver, http_receiver), incident_digest_seconds=WINDOW)
    clock = FakeClock(datetime.now(UTC))
    yield Senders(
        NotificationDelivery(sessionmaker, settings),
        IncidentNotices(sessionmaker, settings, clock=clock),
        clock,
        sessionmaker,
    )


def chats_by_channel(requests: list[ReceivedRequest]) -> Counter[str]:
    return Counter(str(r.body.get("channel")) for r in requests if r.body)


async def test_linked_tickets_page_once_email_each_customer_and_tell_each_team_in_one_digest(
    senders: Senders, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    tickets = [linked_state() for _ in range(12)]
    deliveries = [each for state in tickets for each in breach_and_acknowledge(state)]
    await senders.deliver(deliveries)

    # Customers: one email per ticket, about that ticket.
    mail = await smtp_receiver.wait_for(12)
    customers = [m for m in mail if "ops@acme.example" in m.rcpt_tos]
    assert sorted(m.message["X-Escalator-Key"].split("/")[0] for m in customers) == sorted(
        state.ticket_id for state in tickets
    )
    # On-call: the first trigger only, on the incident's dedup key; no per-ticket ack is sent.
    pages = http_receiver.deliveries("/pager")
    assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [("trigger", INCIDENT)]
    assert pages[0].body["payload"]["summary"].startswith(f"{INCIDENT}: SLA breached at L3")
    assert pages[0].body["payload"]["custom_details"]["incident"] == INCIDENT
    # The teams: nothing yet, until the digest.
    assert http_receiver.deliveries("/chat") == []

    keys = await senders.flush(title="identity outage", open_tickets=12, linked_tickets=12)
    chats = http_receiver.deliveries("/chat")
    assert chats_by_channel(chats) == {"#engineering-l3": 1, "#leadership-l4": 1}
    assert {c.idempotency_key for c in chats} == set(keys)
    l3 = next(c for c in chats if c.body["channel"] == "#engineering-l3")
    assert l3.body["text"].startswith("INC-12 identity outage: 12 first responses breached")
    assert l3.body["text"].endswith("in the last 60 s; 12 open, 12 linked")

    # Every notice keeps its own row, delivered, and says what it went out in.
    rows = await senders.rows()
    assert len(rows) == len(deliveries)
    assert all(row.delivered_at is not None and row.incident_id == INCIDENT for row in rows)
    internal_chat = [r for r in rows if r.channel == NoticeChannel.CHAT.value]
    assert {r.group_key for r in internal_chat} == set(keys)
    paged = [r for r in rows if r.channel == NoticeChannel.PAGER.value]
    assert Counter(r.sink for r in paged) == {"pagerduty": 1, "grouped": len(paged) - 1}
    assert {r.group_key for r in paged} == {f"incident-{INCIDENT}/page"}

    # The same window again: nothing more, even with more notices waiting.
    await senders.deliver(breach_and_acknowledge(linked_state()))
    assert await senders.flush() == []
    assert len(http_receiver.deliveries("/chat")) == 2
    senders.clock.next_window()
    assert len(await senders.flush()) == 2
    assert len(http_receiver.deliveries("/chat")) == 4


class WorkerCrashed(BaseException):
    """The process dies: nothing after this point runs."""


async def test_a_crash_between_a_digests_send_and_its_record_resends_it_with_the_same_key(
    senders: Senders, http_receiver: HttpReceiver
) -> None:
    l3 = [
        d
        for d in breach_and_acknowledge(linked_state())
        if d.notification.audience == Audience.ENGINEERING_L3
    ]
    await senders.deliver(l3)

    async def crash(_: object) -> None:
        raise WorkerCrashed

    senders.notices.after_send = crash
    with pytest.raises(WorkerCrashed):
        await senders.flush()
    assert all(row.delivered_at is None for row in await senders.rows())
    senders.notices.after_send = None
    # The next flush, even a window later, sends the claimed digest first, with its key.
    senders.clock.next_window()
    resent = await senders.flush()
    requests = [r for r in http_receiver.requests if r.path == "/chat"]
    assert len(requests) == 2 and requests[0].idempotency_key == requests[1].idempotency_key
    assert resent == [requests[0].idempotency_key]
    assert len(http_receiver.deliveries("/chat")) == 1
    assert all(row.group_key == resent[0] and row.delivered_at for row in await senders.rows())


async def test_a_storm_of_2000_breaches_is_at_most_one_chat_per_audience_per_window(
    senders: Senders, http_receiver: HttpReceiver
) -> None:
    state = linked_state("acme", 2)  # Premium Sev 2: L1, its breach climbs to L2
    template = [
        d for d in breach_and_acknowledge(state) if d.notification.event_kind == EventKind.SLA_BREACHED
    ]
    internal = [d for d in template if d.notification.channel == NoticeChannel.CHAT]
    assert internal
    storm = [
        d.model_copy(update={"notification": d.notification.model_copy(update={"ticket_id": f"storm-{n}"})})
        for n in range(2000 // len(internal))
        for d in internal
    ]
    assert len(storm) == 2000
    windows = 0
    # The breaches arrive over three windows; the flusher runs after every 250 (eight per window
    # at most, far more often than once a window).
    for batch in range(0, len(storm), 250):
        await senders.deliver_at_once(storm[batch : batch + 250])
        await senders.flush()
        if batch % 750 == 500:
            senders.clock.next_window()
            windows += 1
    senders.clock.next_window()
    await senders.flush()

    chats = http_receiver.deliveries("/chat")
    per_window = Counter((c.body["channel"], c.idempotency_key.rsplit("-", 1)[1]) for c in chats)
    assert per_window and max(per_window.values()) == 1
    audiences = {d.notification.audience for d in internal}
    assert len(chats) <= len(audiences) * (windows + 2)
    async with senders.sessionmaker() as session:
        digests = list(await session.scalars(select(IncidentDigest)))
    assert sum(d.notices for d in digests) == 2000 and all(d.sent_at for d in digests)
    rows = await senders.rows()
    assert len(rows) == 2000 and all(row.delivered_at and row.group_key for row in rows)


async def test_the_incident_acknowledges_and_resolves_its_page_once_and_a_new_trigger_reopens_it(
    senders: Senders, http_receiver: HttpReceiver
) -> None:
    await senders.deliver(breach_and_acknowledge(linked_state()))
    settle = senders.notices.settle_incident_page
    env = ActivityEnvironment()
    acked = await env.run(settle, IncidentPageSettle(incident_id=INCIDENT, action=PageAction.ACKNOWLEDGE))
    assert acked.keys == [f"incident-{INCIDENT}/page1-acknowledge"]
    again = await env.run(settle, IncidentPageSettle(incident_id=INCIDENT, action=PageAction.ACKNOWLEDGE))
    assert again.keys == []
    resolved = await env.run(settle, IncidentPageSettle(incident_id=INCIDENT, action=PageAction.RESOLVE))
    assert resolved.keys == [f"incident-{INCIDENT}/page1-resolve"]
    # A linked ticket that pages after the incident's page was resolved opens it again.
    await senders.deliver(breach_and_acknowledge(linked_state()))
    pages = http_receiver.deliveries("/pager")
    assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [
        ("trigger", INCIDENT),
        ("acknowledge", INCIDENT),
        ("resolve", INCIDENT),
        ("trigger", INCIDENT),
    ]
    with pytest.raises(ValueError, match="triggered by its tickets"):
        IncidentPageSettle(incident_id=INCIDENT, action=PageAction.TRIGGER)


async def test_the_workers_loop_sends_what_waited_a_window_with_no_flush(
    senders: Senders, http_receiver: HttpReceiver
) -> None:
    await senders.deliver(
        [d for d in breach_and_acknowledge(linked_state()) if d.notification.channel == "chat"]
    )
    # Two windows on, no incident workflow has flushed these.
    senders.clock.next_window()
    senders.clock.next_window()
    stop = asyncio.Event()
    loop = asyncio.create_task(senders.notices.run(stop))
    try:
        chats = await http_receiver.wait_for(2, path="/chat")
    finally:
        stop.set()
        await loop
    assert chats_by_channel(chats) == {"#engineering-l3": 1, "#leadership-l4": 1}
    # No title was given: the digest names the incident by its id.
    texts = {c.body["channel"]: c.body["text"] for c in chats}
    assert texts["#engineering-l3"].startswith("Incident INC-12: 1 first response breached")
    # (With the tickets' incident_id column, issue 19's migration 0014, the digest adds the
    # read model's open and linked counts: none here, the tickets were never recorded.)
    assert texts["#leadership-l4"].startswith("Incident INC-12: 1 escalation in the last 60 s")


async def test_with_the_database_away_the_incident_still_pages_and_a_digest_notice_waits_for_a_retry(
    http_receiver: HttpReceiver,
) -> None:
    # Nothing listens on this port: every database call fails at once.
    unreachable = make_sessionmaker(make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none"))
    settings = Settings(pager_url=http_receiver.url_for("/pager"), pager_routing_key=ROUTING_KEY)
    delivery = NotificationDelivery(unreachable, settings)
    deliveries = breach_and_acknowledge(linked_state())
    trigger = next(d for d in deliveries if d.notification.page_action == PageAction.TRIGGER)
    outcome = await ActivityEnvironment().run(delivery.deliver_notification, trigger)
    # Whether another ticket paged first cannot be read: it pages, and the pager collapses
    # triggers on the incident's dedup key.
    assert outcome.sink == "pagerduty" and not outcome.recorded
    assert [p.body["dedup_key"] for p in http_receiver.deliveries("/pager")] == [INCIDENT]
    chat = next(d for d in deliveries if d.notification.channel == NoticeChannel.CHAT)
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(delivery.deliver_notification, chat)
    # Temporal retries it until the outbox records it for the digest.
    assert refused.value.type == "DatabaseUnavailable" and not refused.value.non_retryable


# --- A workflow whose state is linked (time-skipping) -------------------------------------------


async def test_linked_tickets_on_a_worker_page_once_and_email_each_customer(
    own_time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    smtp_receiver: SmtpReceiver,
    http_receiver: HttpReceiver,
) -> None:
    # A server of its own: the session's has been skipped decades ahead by earlier tests, past
    # the years the holidays package knows, and this ticket's calendars would wait on them.
    env = own_time_skipping_env
    async with sending_worker(env, tmp_path, **sinks(smtp_receiver, http_receiver)) as (queue, db):
        received = (await env.get_current_time()).replace(microsecond=0)
        handles = []
        for _ in range(3):
            opened = opened_ticket("acme", 1, received)
            # Filed, then linked: the run carries the linked state, as a continued run does.
            state = machine.open_ticket(opened).state
            state.incident_id = INCIDENT
            handles.append(
                await env.client.start_workflow(
                    TicketWorkflow.run,
                    opened.model_copy(update={"carried_state": state}),
                    id=workflow_id_for(opened.ticket_id),
                    task_queue=queue,
                )
            )
        first = state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None
        await env.sleep(first.due_at - received + timedelta(minutes=1))
        for handle in handles:
            await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=LEAD))
            await handle.execute_update("close", TEST_OVER)
            await handle.result()
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        mail = await smtp_receiver.wait_for(
            lambda got: len([m for m in got if "ops@acme.example" in m.rcpt_tos]) >= 3
        )
        notices = IncidentNotices(db, Settings(**sinks(smtp_receiver, http_receiver)))
        keys = (await ActivityEnvironment().run(notices.flush_incident_digests, IncidentDigestFlush())).keys
        rows = [
            row
            for handle in handles
            for row in (await outbox(db, handle.id.removeprefix("ticket-"))).values()
        ]

    customers = [m for m in mail if "ops@acme.example" in m.rcpt_tos]
    assert len({m.message["X-Escalator-Key"].split("/")[0] for m in customers}) == 3
    pages = http_receiver.deliveries("/pager")
    assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [("trigger", INCIDENT)]
    chats = http_receiver.deliveries("/chat")
    assert chats and max(chats_by_channel(chats).values()) == 1
    assert {c.idempotency_key for c in chats} == set(keys)
    assert all(row.incident_id == INCIDENT and row.delivered_at for row in rows)
    assert {row.group_key for row in rows if row.channel == "chat"} == set(keys)


# --- The incident's workflow sends its digests and settles its page (dev server) ---------------

# A short digest window, so the workflow's timer fires within the test.
SHORT_WINDOW = 2.0


def digest_window(chat: ReceivedRequest) -> str:
    """The window start a digest's key names: incident-<id>/digest-<audience>-<start>."""
    return str(chat.idempotency_key).rsplit("-", 1)[1]


async def test_the_incident_workflow_sends_titled_digests_each_window_and_resolves_its_page(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    configured = sinks(smtp_receiver, http_receiver, incident_digest_seconds=SHORT_WINDOW)
    async with sqlite_stack(dev_env, tmp_path / "api.db", **configured) as stack:
        incident = await open_incident(stack, title="Identity outage", severity=1)
        queue = (await incident_handle(stack, incident).describe()).task_queue
        # Three Sev 1 tickets, linked, received two days ago: every clock breaches at once.
        received = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        tickets = []
        for _ in range(3):
            opened = opened_ticket("acme", 1, received)
            state = machine.open_ticket(opened).state
            state.incident_id = incident
            await stack.client.start_workflow(
                TicketWorkflow.run,
                opened.model_copy(update={"carried_state": state}),
                id=workflow_id_for(opened.ticket_id),
                task_queue=queue,
            )
            tickets.append(opened.ticket_id)
        for ticket_id in tickets:
            await ticket_until(stack, ticket_id, lambda s: s["sla_breached"])

        # The workflow's own flush, within a window or two: one digest per audience, titled.
        titled = f"{incident} Identity outage: "
        chats = await http_receiver.wait_for(
            lambda got: any(c.body and str(c.body.get("text", "")).startswith(titled) for c in got),
            path="/chat",
            timeout=3 * SHORT_WINDOW + 5,
        )
        # The first trigger pages on the incident's key; nothing settled it yet.
        pages = http_receiver.deliveries("/pager")
        assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [("trigger", incident)]

        resolved = await stack.http.post(
            f"/incidents/{incident}/resolve",
            json={"resolution": "IdP failed over"},
            headers=stack.as_(SUPPORT),
        )
        assert resolved.status_code == 202, resolved.text
        await incident_handle(stack, incident).result()
        for ticket_id in tickets:
            await ticket_until(stack, ticket_id, lambda s: s["status"] == "resolved")

    chats = http_receiver.deliveries("/chat")
    assert chats and all(str(c.body["text"]).startswith(titled) for c in chats), chats
    per_window = Counter((c.body["channel"], digest_window(c)) for c in chats)
    assert max(per_window.values()) == 1
    # Resolved with the incident: one resolve, on the incident's dedup key, after the trigger.
    pages = http_receiver.deliveries("/pager")
    assert [(p.body["event_action"], p.body["dedup_key"]) for p in pages] == [
        ("trigger", incident),
        ("resolve", incident),
    ]
