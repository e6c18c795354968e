"""Fault drills (issue 10): separate OS processes, as production runs them, and nothing lost
and nothing doubled.

Each drill runs its own Temporal dev server (the `temporal` binary with `--db-filename` on a
file of its own), `escalator worker` and `escalator api` processes configured only by ESCALATOR_*
variables, on free loopback ports and a data dir of its own (tests/drill_support.py), and real
receivers for the notification sinks (tests/receivers.py). Nothing is mocked, nothing sleeps
to synchronise: waits are on history long polls, workflow results, receivers' records, and,
where nothing announces the change, a bounded poll.

These are slow by nature: two drills must let a one-minute deadline (the shortest contract
target the catalog takes) fall due, and a SIGKILLed worker's in-flight activities come back
only after their 30 s start-to-close timeout.
"""

# ruff: noqa: ASYNC109  (`timeout` bounds a wait that must not hang a test; it is no cancel scope)

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle

from bench.stack_bench import ticket_body
from runtime.codec import data_converter
from runtime.settings import Settings
from store import tickets as read_model
from store.db import IdempotencyRecord, OutboxNotification, Ticket, make_engine, make_sessionmaker
from store.keys import DEMO_KEYS
from tests.drill_support import (
    ADMIN,
    SUPPORT,
    ProcessStack,
    SqliteWriteLock,
    TcpGate,
    audit_tickets,
    burst,
    expected_notice_keys,
    final_states,
    history_evidence,
    send,
    settle,
    until,
)
from tests.fixtures_api import record_written, wait_for_event
from tests.fixtures_db import POSTGRES_URL
from tests.receivers import HttpReceiver
from tests.test_deploy_static import (
    free_port,
    port_is_free,
    process_alive,
    stack_processes,
    start_up,
    up_environment,
    wait_gone,
)
from worker.supervisor import polling_worker_pids
from worker.worker import GRACEFUL_SHUTDOWN
from workflows.actions.change_severity import ChangeSeverity
from workflows.actions.comment import Comment
from workflows.enums import EventKind, Severity, TicketStatus
from workflows.models import TicketState, workflow_id_for
from workflows.ticket import TicketWorkflow

ROUTING_KEY = "drill-routing-key"
# A contract target the catalog takes (1 minute at least), on the 24x7 calendar, so that a
# deadline falls due within a drill whatever the day and hour.
ONE_MINUTE = {"minutes": 1, "calendar": "24x7"}


def sinks(receiver: HttpReceiver) -> dict[str, str]:
    return {
        "ESCALATOR_CHAT_WEBHOOK_URL": receiver.url_for("/chat"),
        "ESCALATOR_PAGER_URL": receiver.url_for("/pager"),
        "ESCALATOR_PAGER_ROUTING_KEY": ROUTING_KEY,
    }


async def onboard(http: httpx.AsyncClient, customer_id: str, severity: int, **overrides: Any) -> None:
    """A Premium customer whose `severity` first response is due one minute after intake."""
    contract = {
        "tier": "premium",
        "product_type": "platform",
        "timezone": "UTC",
        "overrides": {"response": {str(severity): ONE_MINUTE}, **overrides},
    }
    made = await http.post(
        "/customers",
        json={"id": customer_id, "name": customer_id.title(), "contract": contract},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text


async def file(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    made = await http.post("/tickets", json=body, headers=SUPPORT)
    assert made.status_code == 201, made.text
    ticket: dict[str, Any] = made.json()
    return ticket


def incident(customer_id: str, severity: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "title": f"Drill Sev {severity} for {customer_id}",
        "description": "Filed by a fault drill.",
        "severity": severity,
        "product": "identity",
        "channel": "on_call" if severity == 1 else "email",
        "category": "incident",
    }


def first_response_due(ticket: dict[str, Any]) -> datetime:
    return next(
        datetime.fromisoformat(c["due_at"]) for c in ticket["clocks"] if c["kind"] == "first_response"
    )


async def state_once(
    handle: WorkflowHandle[TicketWorkflow, TicketState], holds: Callable[[TicketState], bool]
) -> TicketState:
    """The ticket's state once `holds` is true of it and every event it has is recorded: checked
    again on each new history event (a long poll), never on a timer."""
    state = await handle.query(TicketWorkflow.state)
    if holds(state) and not state.events:
        return state
    async for _ in handle.fetch_history_events(wait_new_event=True):
        state = await handle.query(TicketWorkflow.state)
        if holds(state) and not state.events:
            return state
    raise AssertionError(f"{handle.id} closed before its state held")


async def wait_until_past(instant: datetime) -> None:
    """Wait for the wall clock to pass `instant`: a deadline the drill must let fall due while
    something is down, so there is nothing to wait on but the clock itself."""
    await asyncio.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()) + 0.05)
    assert datetime.now(UTC) > instant


# --- 1. A worker killed mid-burst ----------------------------------------------------------------

BURST = 120


async def test_a_worker_killed_mid_burst_loses_and_doubles_nothing(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """Two workers and one dev server take 120 tickets (filed and closed through the API);
    one worker is SIGKILLed once a third of them are filed. Every ticket ends closed, the read
    model holds each one once with all its events once, and every notice is in the outbox once
    and reached its sink once."""
    async with ProcessStack(tmp_path / "stack", settings=sinks(http_receiver)) as stack:
        await stack.start_server()
        await stack.prepare_database()
        doomed, _, _ = await asyncio.gather(stack.start_worker(), stack.start_worker(), stack.start_api())
        third_filed = asyncio.Event()
        filed_so_far = [0]

        def count(filed: int) -> None:
            filed_so_far[0] = filed
            if filed == BURST // 3:
                third_filed.set()

        async def kill_mid_burst() -> int:
            # Once a third are filed and the workers are sending their notices.
            await third_filed.wait()
            await http_receiver.wait_for(10, path="/chat", timeout=60)
            doomed.send(signal.SIGKILL)
            return filed_so_far[0]

        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
            killing = asyncio.create_task(kill_mid_burst())
            filed = await burst(http, BURST, on_filed=count)
            filed_at_kill = await killing
        assert await doomed.wait() == -signal.SIGKILL
        finals = await settle(stack, filed.ticket_ids)
        engine = make_engine(stack.database_url)
        try:
            audit = await audit_tickets(make_sessionmaker(engine), finals)
        finally:
            await engine.dispose()
        evidence = await history_evidence(stack.handle, filed.ticket_ids, doomed.pid)

    # The kill landed mid-burst, with the doomed worker at work on these very tickets.
    assert filed_at_kill < BURST
    assert evidence.tickets_it_worked_on > 0, evidence
    # Every ticket once, in its expected state: closed, in the workflow and in the read model.
    assert len(set(filed.ticket_ids)) == BURST == audit.tickets_in_read_model == len(audit.rows)
    assert {final.status for final in finals.values()} == {TicketStatus.CLOSED}
    assert not audit.problems, audit.problems[:10]
    # Every notice of every ticket, once each, delivered.
    for i, ticket_id in enumerate(filed.ticket_ids):
        assert set(audit.notices[ticket_id]) == expected_notice_keys(ticket_body(i)), ticket_id
    assert not audit.undelivered, audit.undelivered[:10]
    # Each chat notice reached the sink: a notice sent again after the kill carries the same
    # Idempotency-Key, which the sink collapses (the receiver does, as real ones do).
    delivered = [d.idempotency_key or "" for d in http_receiver.deliveries("/chat")]
    assert sorted(delivered) == sorted(audit.keys_on("chat"))


# --- 2 and 3. Outages that a deadline must outlast -------------------------------------------------


async def test_breaches_fire_through_a_temporal_restart_and_page_through_a_read_model_outage(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """Drills 2 and 3, side by side on stacks of their own: each lets a first-response deadline
    of one minute (the shortest target a contract takes) fall due while something is down, so
    they wait it out together. Either failing stops the other."""
    async with asyncio.TaskGroup() as drills:
        drills.create_task(open_tickets_survive_a_server_restart_and_breaches_fire_on_restart(tmp_path / "t"))
        drills.create_task(
            while_the_read_model_refuses_a_breach_fires_pages_and_it_catches_up(
                tmp_path / "db", http_receiver
            )
        )


async def open_tickets_survive_a_server_restart_and_breaches_fire_on_restart(root: Path) -> None:
    """Drill 2. The dev server stops (SIGTERM) with open tickets and pending timers, stays down
    past a first-response deadline, and restarts on the same --db-filename. The worker rides it
    out; every ticket is still there as it was, and each breach due during the outage fires on
    restart, recorded at its due time."""
    async with ProcessStack(root) as stack:
        await stack.start_server()
        await stack.prepare_database()
        worker, _ = await asyncio.gather(stack.start_worker(), stack.start_api())
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            await onboard(http, "brisk", 2)
            due_soon = [await file(http, incident("brisk", 2)) for _ in range(3)]
            due_later = [await file(http, ticket_body(i)) for i in range(3)]
            tickets = due_soon + due_later
            for ticket in tickets:
                await wait_for_event(stack.handle(ticket["ticket_id"]), record_written())
            before = {
                t["ticket_id"]: await stack.handle(t["ticket_id"]).query(TicketWorkflow.state)
                for t in tickets
            }

            await stack.stop_server()
            due = {t["ticket_id"]: first_response_due(t) for t in due_soon}
            await wait_until_past(max(due.values()))
            restarted_at = datetime.now(UTC)
            await stack.start_server()

            breached = {
                ticket_id: await state_once(stack.handle(ticket_id), lambda state: state.sla_breached)
                for ticket_id in due
            }
            after = {
                t["ticket_id"]: await stack.handle(t["ticket_id"]).query(TicketWorkflow.state)
                for t in due_later
            }
            # The worker took up its work again: an action on a ticket answers.
            acknowledged = await http.post(
                f"/tickets/{due_later[0]['ticket_id']}/acknowledge", json={}, headers=SUPPORT
            )
            timelines = {}
            for ticket_id in due:
                answer = await http.get(f"/tickets/{ticket_id}/timeline", headers=SUPPORT)
                timelines[ticket_id] = answer.json()["events"]
            fired = {ticket_id: await timer_fired_at(stack.handle(ticket_id)) for ticket_id in due}
        # The worker lived through the outage: the same process serves the tickets.
        assert worker.returncode is None, worker.output()

    assert acknowledged.status_code == 200, acknowledged.text
    for ticket_id, state in after.items():
        assert state.status == before[ticket_id].status == TicketStatus.OPEN
        assert state.clocks == before[ticket_id].clocks
    for ticket_id, due_at in due.items():
        assert breached[ticket_id].level == 2  # the breach climbed the ladder from L1
        breaches = [event for event in timelines[ticket_id] if event["kind"] == EventKind.SLA_BREACHED]
        assert [datetime.fromisoformat(event["at"]) for event in breaches] == [due_at]
        # The timer fired on restart, not before the server stopped.
        assert fired[ticket_id] >= restarted_at


async def timer_fired_at(handle: WorkflowHandle[Any, Any]) -> datetime:
    fired = [
        event.event_time.ToDatetime(tzinfo=UTC)
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    ]
    assert fired, f"{handle.id}: no timer fired"
    return fired[-1]


# --- 3. The read model refuses connections -------------------------------------------------------


class ReadModelGate(Protocol):
    def refuse(self) -> None: ...
    def admit(self) -> None: ...


@dataclass
class ReadModel:
    url: str  # what the stack's processes use: through the gate
    direct_url: str  # what the test reads with, around it
    gate: ReadModelGate


@contextlib.asynccontextmanager
async def refusable_read_model(root: Path) -> AsyncIterator[ReadModel]:
    """PostgreSQL behind a TCP proxy that refuses and cuts connections, when CI provides
    PostgreSQL (ESCALATOR_TEST_POSTGRES_URL), in a database of the drill's own; otherwise an
    SQLite file whose write lock another process holds."""
    if POSTGRES_URL is None:
        path = root / "escalator.db"
        url = f"sqlite+aiosqlite:///{path}"
        yield ReadModel(url, url, SqliteWriteLock(path))
        return
    server = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"drill_{uuid.uuid4().hex[:12]}"
    async with server.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    direct = server.url.set(database=name)
    try:
        with TcpGate(direct.host or "127.0.0.1", direct.port or 5432) as gate:
            proxied = direct.set(host="127.0.0.1", port=gate.port)
            yield ReadModel(
                proxied.render_as_string(hide_password=False),
                direct.render_as_string(hide_password=False),
                gate,
            )
    finally:
        async with server.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await server.dispose()


async def while_the_read_model_refuses_a_breach_fires_pages_and_it_catches_up(
    root: Path, http_receiver: HttpReceiver
) -> None:
    """Drill 3. Premium Sev 1 tickets (paged at intake) whose first response is due a minute later;
    the read model refuses every connection from before that deadline until after it. The
    breach fires at its due time and its page reaches the pager while the database is still
    down; the writes retry, and once the database is back the read model holds every event
    and every delivery, once."""
    async with refusable_read_model(root) as db:
        stack = ProcessStack(root / "stack", database_url=db.url, settings=sinks(http_receiver))
        async with stack:
            await stack.start_server()
            await stack.prepare_database()
            await asyncio.gather(stack.start_worker(), stack.start_api())
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                await onboard(http, "steady", 1)
                tickets = [await file(http, incident("steady", 1)) for _ in range(2)]
            ids = [ticket["ticket_id"] for ticket in tickets]
            # Their intake pages are out; the database goes before their 75% warnings.
            for ticket_id in ids:
                await pages_for(http_receiver, ticket_id, 1)
            await asyncio.to_thread(db.gate.refuse)
            refused_at = datetime.now(UTC)
            try:
                # Two deadlines each while it is down: the warning (the first write it holds
                # back), then the breach, whose page must not wait for that write.
                for ticket in tickets:
                    await chats_for(http_receiver, ticket["ticket_id"], "SLA warning", before=warn_at(ticket))
                    await pages_for(http_receiver, ticket["ticket_id"], 2, before=first_response_due(ticket))
                paged = {ticket_id: pages_of(http_receiver, ticket_id) for ticket_id in ids}
                # Down until a write has failed and is being tried again (SQLite: once the
                # lock has outlasted the busy timeout).
                for ticket_id in ids:
                    await until(
                        write_at_attempt(stack.handle(ticket_id), 2), timeout=60, what="a write is retried"
                    )
                # The API during the outage (issue 17 §3): a keyed intake, which must write its
                # claim, is a 503 problem with Retry-After, and files nothing.
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                    during = await http.post(
                        "/tickets",
                        json=incident("steady", 2),
                        headers={**SUPPORT, "idempotency-key": "drill-late"},
                    )
            finally:
                await asyncio.to_thread(db.gate.admit)
            # Right after the outage, the first request on each pooled connection is answered
            # (connections the outage cut are tested before use): the same keyed intake files
            # its ticket once, and a read answers, each at the first try.
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                filed_after = await http.post(
                    "/tickets",
                    json=incident("steady", 2),
                    headers={**SUPPORT, "idempotency-key": "drill-late"},
                )
                read_after = [await http.get(f"/tickets/{ticket_id}", headers=SUPPORT) for ticket_id in ids]
            # Closed once the database is back, so that the read model can be held against
            # each ticket's final state.
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                for i, ticket_id in enumerate(ids):
                    closed, _ = await send(
                        http,
                        "POST",
                        f"/tickets/{ticket_id}/close",
                        retry_for=30,
                        json={"note": "drill over"},
                        headers={**SUPPORT, "idempotency-key": f"drill-close-{i}"},
                    )
                    assert closed.status_code == 200, closed.text
            finals = await final_states(stack.handle, ids)
            retried = {ticket_id: await record_attempts(stack.handle(ticket_id)) for ticket_id in ids}

        engine = make_engine(db.direct_url)
        try:
            sessionmaker = make_sessionmaker(engine)
            audit = await audit_tickets(sessionmaker, finals)
            timelines = {ticket_id: await timeline(sessionmaker, ticket_id) for ticket_id in ids}
            outbox = {ticket_id: await outbox_rows(sessionmaker, ticket_id) for ticket_id in ids}
        finally:
            await engine.dispose()

    assert not audit.problems, audit.problems
    assert not audit.undelivered, audit.undelivered
    assert during.status_code == 503, during.text
    assert during.headers["retry-after"] == "5"
    assert during.json()["rule"] == "database_unavailable"
    assert filed_after.status_code == 201, filed_after.text
    assert [answer.status_code for answer in read_after] == [200] * len(ids)
    for ticket in tickets:
        ticket_id, due_at = ticket["ticket_id"], first_response_due(ticket)
        # The warning and the breach fired at their times, while the database was away.
        warning = next(event for event in timelines[ticket_id] if event.kind == EventKind.SLA_WARNING)
        breach = next(event for event in timelines[ticket_id] if event.kind == EventKind.SLA_BREACHED)
        assert (warning.at, breach.at) == (warn_at(ticket), due_at)
        warned = [key for key in outbox[ticket_id] if key.startswith(f"{warning.seq}-")]
        assert warned and all(outbox[ticket_id][key].channel == "chat" for key in warned)
        # Its page went out then, not when the database came back: the pager had it before
        # the database was let in again (the wait above), and it was not sent early.
        trigger, breach_page = paged[ticket_id]
        assert trigger.idempotency_key == f"{ticket_id}/2-on_call"
        assert breach_page.idempotency_key == f"{ticket_id}/{breach.seq}-on_call"
        page_row = outbox[ticket_id][f"{breach.seq}-on_call"]
        assert page_row.sink == "pagerduty" and page_row.delivered_at is not None
        assert refused_at < due_at <= page_row.delivered_at
        # The writes of the breach were retried until the database answered.
        assert retried[ticket_id] > 1
    # Nothing reached a sink twice.
    sent = Counter(r.idempotency_key for r in http_receiver.requests)
    assert set(sent.values()) == {1}, [key for key, n in sent.items() if n > 1]


async def test_a_page_raised_while_a_write_is_stuck_goes_out_without_waiting_for_the_database(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """While the read model refuses, a ticket's comment (by signal, as a system talking to
    Temporal directly would send it) leaves a write that cannot finish; then a raise to Sev 1
    pages on-call at once, not when the database comes back."""
    async with refusable_read_model(tmp_path) as db:
        stack = ProcessStack(tmp_path / "stack", database_url=db.url, settings=sinks(http_receiver))
        async with stack:
            await stack.start_server()
            await stack.prepare_database()
            await asyncio.gather(stack.start_worker(), stack.start_api())
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                ticket_id = (await file(http, incident("acme", 2)))["ticket_id"]
            handle = stack.handle(ticket_id)
            await state_once(handle, lambda state: True)
            actor = DEMO_KEYS["dev-support"]
            await asyncio.to_thread(db.gate.refuse)
            try:
                await handle.signal("comment-signal", Comment(actor=actor, body="Looking into it."))
                await until(
                    write_at_attempt(handle, 1),
                    timeout=60,
                    what="the comment's write is under way",
                )
                await handle.signal(
                    "change-severity-signal",
                    ChangeSeverity(actor=actor, severity=Severity.CRITICAL, reason="Everyone is down"),
                )
                await pages_for(http_receiver, ticket_id, 1, timeout=10)
            finally:
                await asyncio.to_thread(db.gate.admit)


def warn_at(ticket: dict[str, Any]) -> datetime:
    return next(
        datetime.fromisoformat(c["warn_at"]) for c in ticket["clocks"] if c["kind"] == "first_response"
    )


async def chats_for(receiver: HttpReceiver, ticket_id: str, text: str, *, before: datetime) -> None:
    """Wait for a chat notice of the ticket that says `text`: 30 s past `before`."""
    timeout = 30 + max(0.0, (before - datetime.now(UTC)).total_seconds())
    await receiver.wait_for(
        lambda got: any(
            d.idempotency_key and d.idempotency_key.startswith(f"{ticket_id}/") and text in str(d.body)
            for d in got
        ),
        path="/chat",
        timeout=timeout,
    )


async def record_attempt(handle: WorkflowHandle[Any, Any]) -> int:
    """The try an unfinished record_ticket of the ticket is at: 1 once it has started, 2 and
    on once it failed and waits for (or runs) its next try; 0 with none under way."""
    described = await handle.describe()
    return max(
        (
            pending.attempt
            for pending in described.raw_description.pending_activities
            if pending.activity_type.name == "record_ticket"
            and (pending.attempt > 1 or pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
        ),
        default=0,
    )


def write_at_attempt(handle: WorkflowHandle[Any, Any], attempt: int) -> Callable[[], Awaitable[bool]]:
    """For `until`: a record_ticket of the ticket is running its `attempt`-th try, or a later one."""

    async def check() -> bool:
        return await record_attempt(handle) >= attempt

    return check


def pages_of(receiver: HttpReceiver, ticket_id: str) -> list[Any]:
    return [d for d in receiver.deliveries("/pager") if d.body and d.body.get("dedup_key") == ticket_id]


async def pages_for(
    receiver: HttpReceiver, ticket_id: str, count: int, *, before: datetime | None = None, timeout: float = 30
) -> None:
    """Wait for the ticket's `count`-th page: `timeout` seconds, past `before` if given."""
    if before is not None:
        timeout += max(0.0, (before - datetime.now(UTC)).total_seconds())
    await receiver.wait_for(
        lambda _: len(pages_of(receiver, ticket_id)) >= count, path="/pager", timeout=timeout
    )


async def record_attempts(handle: WorkflowHandle[Any, Any]) -> int:
    """The most attempts any completed record_ticket of the ticket took."""
    attempts = [
        event.activity_task_started_event_attributes.attempt
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    return max(attempts)


async def timeline(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: str) -> list[Any]:
    async with sessionmaker() as session:
        return await read_model.get_timeline(session=session, ticket_id=ticket_id)


async def outbox_rows(
    sessionmaker: async_sessionmaker[AsyncSession], ticket_id: str
) -> dict[str, OutboxNotification]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxNotification).where(OutboxNotification.ticket_id == ticket_id)
        )
        return {row.key: row for row in rows}


# --- 4. SIGTERM drains --------------------------------------------------------------------------


class HeldHttpReceiver(HttpReceiver):
    """An HttpReceiver that holds every request on a held path until `release()`, then
    answers it as HttpReceiver does; `arrived` counts the requests it holds or held."""

    def __init__(self) -> None:
        super().__init__()
        self._held: set[str] = set()
        self._released: asyncio.Event | None = None  # made on the server's loop
        self.arrived = 0

    def hold(self, path: str) -> None:
        self._held.add("/" + path.lstrip("/"))

    def release(self) -> None:
        self._held.clear()
        released, loop = self._released, self._loop
        if released is not None and loop is not None:
            loop.call_soon_threadsafe(released.set)

    async def wait_for_arrivals(self, count: int, *, timeout: float = 30) -> None:
        await self._until(lambda: self.arrived >= count, timeout=timeout, what=f"{count} held requests")

    async def _answer(self, request: Request) -> Response:
        self._loop = asyncio.get_running_loop()
        if request.url.path in self._held:
            if self._released is None:
                self._released = asyncio.Event()
            self.arrived += 1
            self._changed()
            await self._released.wait()
        return await super()._answer(request)


async def test_sigterm_lets_a_worker_finish_its_activity_and_the_api_its_request(tmp_path: Path) -> None:
    """SIGTERM to a worker while a notice is being sent (the chat sink holds its answer):
    the worker stops taking work, the send completes on that worker, on its first attempt,
    and the worker exits 0. Then SIGTERM to the API while a request waits on the workflow
    (no worker runs): it stops listening, the request still gets its answer once a worker
    comes, and the API exits 0."""
    with HeldHttpReceiver() as chat:
        settings = {"ESCALATOR_CHAT_WEBHOOK_URL": chat.url_for("/chat")}
        async with ProcessStack(tmp_path / "stack", settings=settings) as stack:
            await stack.start_server()
            await stack.prepare_database()
            # INFO: the SDK says when the worker begins its graceful shutdown.
            draining, api = await asyncio.gather(
                stack.start_worker(ESCALATOR_LOG_LEVEL="INFO"), stack.start_api()
            )
            chat.hold("/chat")
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
                ticket_id = (await file(http, incident("acme", 2)))["ticket_id"]
                await chat.wait_for_arrivals(1)
                draining.send(signal.SIGTERM)
                await until(
                    lambda: asyncio.to_thread(lambda: "Beginning worker shutdown" in draining.output(200)),
                    timeout=30,
                    what="the worker begins its graceful shutdown",
                )
                chat.release()
                worker_status = await draining.wait(GRACEFUL_SHUTDOWN.total_seconds() + 20)
                deliveries = await delivery_history(stack.handle(ticket_id))

                # The API, with a request in flight that only a worker can answer.
                acknowledging = asyncio.create_task(
                    http.post(
                        f"/tickets/{ticket_id}/acknowledge",
                        json={},
                        headers={**SUPPORT, "idempotency-key": "drill-acknowledge"},
                    )
                )
                engine = make_engine(stack.database_url)
                try:
                    await until(
                        lambda: idempotency_claimed(make_sessionmaker(engine), "drill-acknowledge"),
                        timeout=30,
                        what="the API took the request",
                    )
                finally:
                    await engine.dispose()
                api.send(signal.SIGTERM)
                await until(
                    lambda: refuses_connections(stack.api_url), timeout=30, what="the API stops listening"
                )
                assert not acknowledging.done()
                await stack.start_worker()
                answer = await acknowledging
                api_status = await api.wait(30)

    assert worker_status == 0, draining.output()
    # Both notices of the intake (the held chat and the customer's email, to the log) went out
    # in the intake's one step (`notify_and_record`), finished by the draining worker on its
    # first attempt: no retry, no duplicate.
    assert len(deliveries) == 1, deliveries
    for attempt, identity, how in deliveries:
        assert (attempt, how) == (1, "completed") and identity.startswith(f"{draining.pid}@"), deliveries
    assert [r.idempotency_key for r in chat.requests] == [f"{ticket_id}/1-support_l1"]
    assert len(chat.deliveries("/chat")) == 1
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "acknowledged"
    assert api_status == 0, api.output()


async def delivery_history(handle: WorkflowHandle[Any, Any]) -> list[tuple[int, str, str]]:
    """Each activity that sent notices (a step, or a deliver_notification) that ended: the
    attempt that ended it, the worker, and how."""
    scheduled: dict[int, str] = {}
    started: dict[int, tuple[int, str]] = {}
    ended = []
    endings = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: (
            "completed",
            "activity_task_completed_event_attributes",
        ),
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: ("failed", "activity_task_failed_event_attributes"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: (
            "timed out",
            "activity_task_timed_out_event_attributes",
        ),
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: ("canceled", "activity_task_canceled_event_attributes"),
    }
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started[attributes.scheduled_event_id] = (attributes.attempt, attributes.identity)
        elif event.event_type in endings:
            how, field = endings[event.event_type]
            scheduled_id = getattr(event, field).scheduled_event_id
            attempt, identity = started.get(scheduled_id, (0, ""))
            if scheduled[scheduled_id] in ("notify_and_record", "deliver_notification"):
                ended.append((attempt, identity, how))
    return ended


async def idempotency_claimed(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> bool:
    async with sessionmaker() as session:
        found = await session.scalar(select(IdempotencyRecord.key).where(IdempotencyRecord.key == key))
    return found is not None


async def refuses_connections(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        try:
            await http.get("/healthz")
        except httpx.ConnectError:
            return True
        except httpx.RemoteProtocolError:
            # A connection the kernel accepted just before the API closed its socket, then closed
            # unanswered: the API is stopping, but only a refused connection shows it stopped
            # listening, so look again.
            return False
    return False


# --- 5. `escalator up` killed outright -------------------------------------------------------------


async def test_after_escalator_up_is_killed_mid_burst_the_next_one_resumes_every_ticket(
    tmp_path: Path,
) -> None:
    """tests/test_deploy_static.py proves that nothing outlives a SIGKILLed `escalator up` and
    that a restart after Ctrl-C resumes a ticket. This drill kills it (as the OOM killer would)
    in the middle of a burst of 40 tickets filed and closed by a client that retries with the
    same Idempotency-Key, starts the next `escalator up` on the same data dir, and finds all
    40 tickets closed, once each, with every event and notice once."""
    api_port = free_port()  # the same for the next `escalator up`
    env = {**up_environment(tmp_path, api_port), "ESCALATOR_WORKER_METRICS_PORT": "0"}
    count = 40
    first = await start_up(tmp_path, env)
    second = None
    children: dict[str, int] = {}
    try:
        await asyncio.wait_for(first.up.wait(), 90)
        children = stack_processes(first.process.pid)
        killed = asyncio.Event()

        def kill_up(filed: int) -> None:
            if filed == count // 3:
                first.process.kill()
                killed.set()

        async def restart() -> Any:
            await killed.wait()
            await first.process.wait()
            left = await wait_gone(list(children.values()), 60)
            assert not left, f"outlived a killed `escalator up`: {left} of {children}"
            assert port_is_free(api_port)
            started = await start_up(tmp_path, env)
            await asyncio.wait_for(started.up.wait(), 90)
            return started

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=60) as http:
            filed, second = await asyncio.gather(
                burst(http, count, on_filed=kill_up, retry_for=180), restart()
            )
        client = await Client.connect(
            env["ESCALATOR_TEMPORAL_ADDRESS"], data_converter=data_converter(Settings())
        )
        finals = await final_states(
            lambda ticket_id: client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id)),
            filed.ticket_ids,
        )
        engine = make_engine(env["ESCALATOR_DATABASE_URL"])
        try:
            audit = await audit_tickets(make_sessionmaker(engine), finals)
        finally:
            await engine.dispose()
        second.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(second.process.wait(), 60)
    finally:
        for running in (first, second):
            if running is not None:
                await running.finish()
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    assert second is not None and second.process.returncode == 0, second.printed if second else ""
    # Some requests died with the first stack and went again to the second.
    assert filed.resent > 0
    assert len(set(filed.ticket_ids)) == count == audit.tickets_in_read_model
    assert {final.status for final in finals.values()} == {TicketStatus.CLOSED}
    assert not audit.problems, audit.problems[:10]
    for i, ticket_id in enumerate(filed.ticket_ids):
        assert set(audit.notices[ticket_id]) == expected_notice_keys(ticket_body(i)), ticket_id
    assert not audit.undelivered, audit.undelivered[:10]


# --- 6. `escalator up` heals a worker killed mid-burst ----------------------------------------------

PROBES = 10


async def test_escalator_up_restarts_a_worker_killed_mid_burst_and_intake_answers_throughout(
    tmp_path: Path,
) -> None:
    """Under `escalator up`, the worker is SIGKILLed once a third of a burst of 60 tickets is
    filed (as the OOM killer would). `escalator up` says why and starts a new worker; the API
    (the same process throughout) takes every ticket at the first try, those filed while no
    worker runs included; every ticket then closes, once each, with every event and notice once."""
    api_port = free_port()
    # A backoff of 10 s keeps the worker down long enough to file tickets meanwhile.
    env = {
        **up_environment(tmp_path, api_port),
        "ESCALATOR_WORKER_METRICS_PORT": "0",
        "ESCALATOR_UP_RESTART_BACKOFF_SECONDS": "10",
    }
    count = 60
    running = await start_up(tmp_path, env)
    children: dict[str, int] = {}
    healed: dict[str, int] = {}
    try:
        await asyncio.wait_for(running.up.wait(), 90)
        children = stack_processes(running.process.pid)
        doomed = children["worker"]
        client = await Client.connect(
            env["ESCALATOR_TEMPORAL_ADDRESS"], data_converter=data_converter(Settings())
        )
        third_filed, killed, back = asyncio.Event(), asyncio.Event(), asyncio.Event()
        engine = make_engine(env["ESCALATOR_DATABASE_URL"])

        def count_filed(filed: int) -> None:
            if filed == count // 3:
                third_filed.set()

        async def recorded(tickets: int) -> bool:
            async with make_sessionmaker(engine)() as session:
                return (await session.scalar(select(func.count()).select_from(Ticket))) >= tickets

        async def kill_mid_burst() -> None:
            # Once a third are filed and the worker has recorded a few: it is at work.
            await third_filed.wait()
            await until(lambda: recorded(5), timeout=60, what="the worker records tickets")
            os.kill(doomed, signal.SIGKILL)
            killed.set()

        async def new_worker_polls() -> bool:
            return bool(await polling_worker_pids(client, Settings().task_queue) - {doomed})

        async def comes_back() -> None:
            await killed.wait()
            await until(new_worker_polls, timeout=90, what="a new worker polls the task queue")
            back.set()

        async def file_while_down(http: httpx.AsyncClient) -> tuple[list[str], int]:
            """File up to PROBES tickets one after another from the kill on, each at the first
            try; how many were answered before a new worker polled."""
            await killed.wait()
            ids, while_down = [], 0
            for i in range(PROBES):
                answer = await http.post(
                    "/tickets",
                    json=ticket_body(count + i),
                    headers={**SUPPORT, "idempotency-key": f"drill-probe-{i}"},
                )
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["ticket_id"])
                while_down += not back.is_set()
            return ids, while_down

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=120) as http:
            filed, (probes, answered_while_down), _, _ = await asyncio.gather(
                burst(http, count, on_filed=count_filed),
                file_while_down(http),
                kill_mid_burst(),
                comes_back(),
            )
            for i, ticket_id in enumerate(probes):
                closed, _ = await send(
                    http,
                    "POST",
                    f"/tickets/{ticket_id}/close",
                    retry_for=60,
                    json={"note": "drill over"},
                    headers={**SUPPORT, "idempotency-key": f"drill-probe-close-{i}"},
                )
                assert closed.status_code == 200, closed.text
        ticket_ids = filed.ticket_ids + probes
        handle = functools.partial(handle_on, client)
        finals = await final_states(handle, ticket_ids)
        evidence = await history_evidence(handle, ticket_ids, doomed)
        audit = await audit_tickets(make_sessionmaker(engine), finals)
        await engine.dispose()
        healed = stack_processes(running.process.pid)
        running.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(running.process.wait(), 60)
    finally:
        await running.finish()
        for pid in [*children.values(), *healed.values()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    printed = running.printed
    # The worker died at work on these tickets, and a new one took over; the API never stopped.
    assert evidence.tickets_it_worked_on > 0, evidence
    assert "The worker exited with status -9 (SIGKILL); restarting it in 10.0 s" in printed, printed
    assert "Restarted the worker: pid" in printed, printed
    assert healed["api"] == children["api"] and healed["worker"] != doomed
    # Intake answered throughout: no POST /tickets needed a second try, and tickets were taken
    # while no worker ran.
    assert filed.refiled == 0
    assert answered_while_down > 0
    # Every ticket once, closed, with its events and notices once each.
    assert len(set(ticket_ids)) == count + PROBES == audit.tickets_in_read_model
    assert {final.status for final in finals.values()} == {TicketStatus.CLOSED}
    assert not audit.problems, audit.problems[:10]
    for i, ticket_id in enumerate(ticket_ids):
        assert set(audit.notices[ticket_id]) == expected_notice_keys(ticket_body(i)), ticket_id
    assert not audit.undelivered, audit.undelivered[:10]
    # Ctrl-C still stops the healed stack, and nothing outlives it.
    assert running.process.returncode == 0, printed
    assert "Stopping on SIGINT: API, worker, Temporal dev server" in printed
    assert not [pid for pid in healed.values() if process_alive(pid)], printed


def handle_on(client: Client, ticket_id: str) -> WorkflowHandle[TicketWorkflow, TicketState]:
    return client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))
