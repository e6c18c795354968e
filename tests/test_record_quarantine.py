"""No input may wedge a ticket's record (issue 17 §1).

- Outage times a client sends are bounded (workflows/outages.py): at intake and in the
  `outage` action, no earlier than 30 days before the ticket was received, never in the future.
- A read-model write the database refuses on its data is quarantined, not retried for ever:
  the row is kept with its error, `escalator_record_failures_total` counts it, a log line names
  the ticket, GET /tickets/{id} says the read model is behind, and the ticket runs its clocks,
  sends its notices and closes all the same. The failure is injected at every write by a
  trigger the database itself fires, on SQLite and PostgreSQL. A database that is away is
  still retried (tests/test_fault_drills.py drills it end to end).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

from activities.read_model import RECORD_FAILURES, TicketReadModel
from bench.stack_bench import free_port
from runtime.settings import Settings
from store.db import OutboxNotification, Ticket, make_engine, make_sessionmaker
from store.demo_catalog import seed_demo_catalog
from store.quarantine import data_error_kind, quarantined_records
from tests.factories import SUPPORT, TEST_OVER, opened_ticket
from tests.fixtures_api import Stack, running_stack
from tests.fixtures_temporal import WorkerFactory
from tests.test_replay import markers
from worker.worker import build_worker
from workflows import machine
from workflows.actions.base import Refusal, RefusalKind
from workflows.actions.comment import Comment
from workflows.actions.outage import RecordOutage
from workflows.enums import ClockKind, ClockStatus, EventKind
from workflows.models import TicketEvent, TicketFacts, TicketRecord, TicketState, workflow_id_for
from workflows.outages import OUTAGE_LOOKBACK, outage_times_problem
from workflows.ticket import RECORD_QUARANTINED, TIMED_SIGNAL_CHECKS_PATCH, TicketWorkflow

# Converts to no UTC time at all: the read model's OverflowError of issue 17.
NO_UTC = datetime.fromisoformat("0001-01-01T00:00:00+14:00")
RECEIVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
INJECTED = "injected: the read model refuses this ticket"


# --- Bounds on the times a client sends -------------------------------------------------------


@pytest.mark.parametrize(
    ("started", "ended", "field", "rule"),
    [
        (NO_UTC, None, "started_at", "outage_window"),
        (RECEIVED - OUTAGE_LOOKBACK - timedelta(seconds=1), None, "started_at", "outage_window"),
        (RECEIVED + timedelta(minutes=31), None, "started_at", "outage_window"),
        (RECEIVED, RECEIVED + timedelta(minutes=31), "ended_at", "outage_window"),
        (RECEIVED, datetime.fromisoformat("9999-12-31T23:59:59-14:00"), "ended_at", "outage_window"),
        (RECEIVED, RECEIVED - timedelta(minutes=1), "ended_at", "outage_times"),
        (datetime(2026, 11, 2, 9, 0), None, "started_at", "outage_times"),
    ],
)
def test_outage_times_outside_the_bounds_are_refused_naming_the_field_and_the_rule(
    started: datetime, ended: datetime | None, field: str, rule: str
) -> None:
    now = RECEIVED + timedelta(minutes=30)
    problem = outage_times_problem(received_at=RECEIVED, now=now, started_at=started, ended_at=ended)

    assert problem is not None
    assert (problem.field, problem.rule) == (field, rule)
    assert str(problem).startswith(f"{field}: ")


def test_outage_times_within_the_bounds_pass() -> None:
    now = RECEIVED + timedelta(minutes=30)
    earliest = RECEIVED - OUTAGE_LOOKBACK

    assert outage_times_problem(received_at=RECEIVED, now=now, started_at=earliest, ended_at=now) is None
    assert outage_times_problem(received_at=RECEIVED, now=now, started_at=now, ended_at=None) is None


def test_the_outage_action_refuses_a_time_with_no_utc_equivalent_at_the_machines_now() -> None:
    state = machine.open_ticket(opened_ticket("acme", 1, RECEIVED)).state
    later = RECEIVED + timedelta(days=40)
    refused = RecordOutage(actor=SUPPORT, started_at=NO_UTC)
    # 40 days on: ended a second from now is in the future; 29 days before intake is not too old.
    in_future = RecordOutage(actor=SUPPORT, started_at=RECEIVED, ended_at=later + timedelta(seconds=1))
    fine = RecordOutage(actor=SUPPORT, started_at=RECEIVED - timedelta(days=29), ended_at=later)

    for action in (refused, in_future):
        with pytest.raises(Refusal) as raised:
            machine.validate(state, action, later)
        assert raised.value.kind == RefusalKind.INVALID
        assert "(rule outage_window)." in raised.value.message
        # apply (outside the workflow) validates first: nothing changes.
        with pytest.raises(Refusal):
            machine.apply(state, action, later)
    assert machine.apply(state, fine, later).state.outage_ended_at == later


# --- Which failures are the data's ------------------------------------------------------------


def refused_record(ticket_id: str) -> TicketRecord:
    """A record whose facts carry an outage time with no UTC equivalent, as intake let through
    before the bounds: the read model's UTC conversion overflows."""
    opened = opened_ticket("acme", 1, RECEIVED).model_copy(update={"ticket_id": ticket_id})
    state = machine.open_ticket(opened).state
    return TicketRecord(
        row=state.row(RECEIVED), events=state.events, facts=TicketFacts(outage_started_at=NO_UTC)
    )


async def test_a_record_that_overflows_is_quarantined_with_its_error_not_retried(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="escalator.read_model")
    record = refused_record("t-overflow")

    with pytest.raises(ApplicationError) as raised:
        await TicketReadModel(sessionmaker).record_ticket(record)

    assert raised.value.type == RECORD_QUARANTINED
    assert raised.value.non_retryable
    async with sessionmaker() as session:
        kept = await quarantined_records(session=session, ticket_id="t-overflow")
        # One transaction: nothing of the refused record was written.
        assert await session.get(Ticket, "t-overflow") is None
    assert [(row.error_kind, row.error.split(":")[0]) for row in kept] == [("overflow", "OverflowError")]
    assert json.loads(kept[0].record)["facts"]["outage_started_at"] == NO_UTC.isoformat()
    assert any("t-overflow" in r.getMessage() for r in caplog.records if r.name == "escalator.read_model")


async def test_a_database_that_is_away_is_not_a_data_error(tmp_path: Path) -> None:
    # No schema: SQLite's OperationalError ("no such table"), as when the database is not ready.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(OperationalError) as raised:
            await TicketReadModel(make_sessionmaker(engine)).record_ticket(refused_record("t-away"))
    finally:
        await engine.dispose()
    assert data_error_kind(raised.value) is None
    # Nothing listens on this port: the connection is refused.
    away = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test")
    try:
        with pytest.raises(OSError) as refused:
            await TicketReadModel(make_sessionmaker(away)).record_ticket(refused_record("t-away"))
    finally:
        await away.dispose()
    assert data_error_kind(refused.value) is None


# --- A failure injected at every write --------------------------------------------------------


async def refuse_every_ticket_write(engine: AsyncEngine) -> None:
    """A trigger that makes the database refuse every write of a ticket row, as a value it will
    not store: SQLite's RAISE (an IntegrityError), PostgreSQL's numeric_value_out_of_range."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_tickets() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"RAISE EXCEPTION '{INJECTED}' USING ERRCODE = '22003'; END $$"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_tickets BEFORE INSERT OR UPDATE ON tickets "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_tickets()"
                )
            )
        else:
            for event in ("INSERT", "UPDATE"):
                await connection.execute(
                    text(
                        f"CREATE TRIGGER refuse_tickets_{event.lower()} BEFORE {event} ON tickets "
                        f"BEGIN SELECT RAISE(ABORT, '{INJECTED}'); END"
                    )
                )


async def worker_metrics(port: int) -> dict[tuple[str, ...], float]:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return {
        (sample.name, sample.labels.get("error", "")): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == RECORD_FAILURES
    }


async def test_a_ticket_whose_every_write_is_refused_runs_its_clocks_sends_its_notices_and_closes(
    time_skipping_env: WorkflowEnvironment,
    db_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = time_skipping_env
    caplog.set_level(logging.ERROR, logger="escalator.read_model")
    await refuse_every_ticket_write(db_engine)
    sessionmaker = make_sessionmaker(db_engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))
    worker_client = await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=env.client.data_converter,
        runtime=runtime,
    )
    settings = Settings(task_queue=f"refused-{uuid.uuid4().hex[:8]}")
    async with build_worker(worker_client, sessionmaker, settings):
        received = (await env.get_current_time()).replace(microsecond=0)
        # Premium Sev 1: L3 at once, on-call paged, L4 told; its first response due in 1 h.
        opened = opened_ticket("acme", 1, received)
        handle = await env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=settings.task_queue
        )
        await env.sleep(timedelta(hours=1, minutes=1))
        running: TicketState = await handle.query(TicketWorkflow.state)
        await handle.execute_update("close", TEST_OVER)
        final: TicketState = await handle.result()
        metrics = await worker_metrics(port)

    first = running.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.status == ClockStatus.BREACHED
    assert running.level == 4  # the breach climbed the ladder
    async with sessionmaker() as session:
        kept = await quarantined_records(session=session, ticket_id=opened.ticket_id)
        notices = list(
            await session.scalars(
                select(OutboxNotification).where(OutboxNotification.ticket_id == opened.ticket_id)
            )
        )
        assert await session.get(Ticket, opened.ticket_id) is None
    # Every write was refused and set aside, the close's too, each with its error and record.
    assert final.records_quarantined == len(kept) >= 3
    assert all(INJECTED in row.error for row in kept)
    kinds = {row.error_kind for row in kept}
    assert kinds == {"data" if db_engine.dialect.name == "postgresql" else "integrity"}
    recorded_kinds = [
        TicketEvent.model_validate(event).kind for row in kept for event in json.loads(row.record)["events"]
    ]
    assert EventKind.SLA_BREACHED in recorded_kinds and EventKind.CLOSED in recorded_kinds
    # The notices went out all the same: the page at intake and the breach's.
    delivered = {row.key for row in notices if row.delivered_at is not None}
    assert any(key.endswith("-on_call") for key in delivered)
    assert len(delivered) >= 4
    assert metrics == {(RECORD_FAILURES, kind): len(kept) for kind in kinds}
    named = [
        r for r in caplog.records if r.name == "escalator.read_model" and opened.ticket_id in r.getMessage()
    ]
    assert len(named) == len(kept)


# --- Through the API ---------------------------------------------------------------------------


@pytest.fixture
async def refusing_stack(db_engine: AsyncEngine, dev_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(dev_env, db_engine) as running:
        await refuse_every_ticket_write(db_engine)
        yield running


DOWN = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 1,
    "product": "identity",
    "channel": "on_call",
    "category": "incident",
}
SUPPORT_KEY = {"Authorization": "Bearer dev-support"}


async def test_the_ticket_says_its_read_model_is_behind_and_still_closes(refusing_stack: Stack) -> None:
    stack = refusing_stack
    filed = await stack.http.post("/tickets", json=DOWN, headers=SUPPORT_KEY)
    assert filed.status_code == 201
    assert filed.json()["read_model"] == "current"
    ticket_id = filed.json()["ticket_id"]
    handle = stack.handle(ticket_id)
    async for _ in handle.fetch_history_events(wait_new_event=True):
        if (await handle.query("state"))["records_quarantined"]:
            break

    shown = await stack.http.get(f"/tickets/{ticket_id}", headers=SUPPORT_KEY)
    closed = await stack.http.post(f"/tickets/{ticket_id}/close", json={"note": "done"}, headers=SUPPORT_KEY)
    final = await handle.result()

    assert shown.status_code == 200
    assert shown.json()["read_model"] == "behind"
    assert shown.json()["records_quarantined"] >= 1
    assert closed.status_code == 200
    assert final["status"] == "closed"
    assert final["records_quarantined"] > shown.json()["records_quarantined"]
    listed = await stack.http.get("/tickets", headers=SUPPORT_KEY)
    assert ticket_id not in {item["ticket_id"] for item in listed.json()["items"]}


async def test_an_outage_time_with_no_utc_equivalent_is_refused_at_intake_and_in_the_action(
    stack: Stack,
) -> None:
    at_intake = await stack.http.post(
        "/tickets", json={**DOWN, "outage_started_at": "0001-01-01T00:00:00+14:00"}, headers=SUPPORT_KEY
    )
    filed = await stack.http.post("/tickets", json=DOWN, headers=SUPPORT_KEY)
    ticket_id = filed.json()["ticket_id"]
    in_action = await stack.http.post(
        f"/tickets/{ticket_id}/outage", json={"started_at": "0001-01-01T00:00:00+14:00"}, headers=SUPPORT_KEY
    )
    too_long = await stack.http.post(
        f"/tickets/{ticket_id}/outage",
        json={
            "started_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "ended_at": "3026-01-01T00:00:00Z",
        },
        headers=SUPPORT_KEY,
    )
    state = await stack.handle(ticket_id).query("state")

    assert at_intake.status_code == 422
    assert at_intake.json()["rule"] == "outage_window"
    assert at_intake.json()["detail"].startswith("outage_started_at: ")
    for refused, field in ((in_action, "started_at"), (too_long, "ended_at")):
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith(f"{field}: ")
        assert "(rule outage_window)." in refused.json()["detail"]
    assert state["outage_started_at"] is None
    assert filed.status_code == 201


async def test_an_outage_signal_with_no_utc_equivalent_is_ignored_on_the_patched_branch(
    time_skipping_env: WorkflowEnvironment, ticket_worker: WorkerFactory
) -> None:
    env = time_skipping_env
    async with ticket_worker(env.client) as tickets:
        received = (await env.get_current_time()).replace(microsecond=0)
        handle = await tickets.start(opened_ticket("acme", 1, received))
        await handle.signal("outage-signal", RecordOutage(actor=SUPPORT, started_at=NO_UTC))
        # An update after the signal: its answer follows it.
        ignored = await handle.execute_update("comment", Comment(actor=SUPPORT, body="on it"))
        began = received - timedelta(minutes=5)
        await handle.signal("outage-signal", RecordOutage(actor=SUPPORT, started_at=began))
        taken = await handle.execute_update("comment", Comment(actor=SUPPORT, body="still on it"))
        history = await handle.fetch_history()

    assert ignored["outage_started_at"] is None
    assert datetime.fromisoformat(taken["outage_started_at"]) == began
    assert TIMED_SIGNAL_CHECKS_PATCH in markers(history)
