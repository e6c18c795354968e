"""Observability (issue 10): GET /metrics, the worker's Temporal SDK metrics, JSON logs with
the ticket's ids, and /readyz against a database and a Temporal server that do not answer."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.read_model import TicketReadModel
from api.main import create_app
from bench.stack_bench import free_port
from runtime.settings import Settings
from runtime.telemetry import JsonLogFormatter, ticket_id_of, worker_runtime
from runtime.temporal import connect_client
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from tests.factories import TEST_OVER, opened_ticket
from tests.fixtures_api import Stack, completed_activity, wait_for_event
from tests.fixtures_temporal import BIN_DIR
from worker import supervisor
from worker.worker import build_worker
from workflows.actions.resume import Resume
from workflows.enums import EventKind, OwningLine, Product, ProductType, Severity, TicketStatus, Tier
from workflows.models import SYSTEM, TicketEvent, TicketRecord, TicketRow, workflow_id_for
from workflows.ticket import TicketWorkflow

ADMIN = {"Authorization": "Bearer dev-admin"}
LOGIN_DOWN = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 3,
    "product": "identity",
    "channel": "email",
    "category": "incident",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def stack_settings(dev_env: WorkflowEnvironment, database_url: str, **changes: Any) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"tickets-{uuid.uuid4().hex[:8]}",
        **changes,
    )


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


# --- GET /metrics -----------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template_intake_latency_and_refusals_by_rule(
    stack: Stack,
) -> None:
    before = await scrape(stack.http)

    filed = await stack.http.post("/tickets", json=LOGIN_DOWN, headers=ADMIN)
    assert filed.status_code == 201, filed.text
    ticket_id = filed.json()["ticket_id"]
    assert (await stack.http.get(f"/tickets/{ticket_id}", headers=ADMIN)).status_code == 200
    assert (await stack.http.get("/tickets/nosuchticket", headers=ADMIN)).status_code == 404
    invalid = await stack.http.post("/tickets", json={**LOGIN_DOWN, "severity": 9}, headers=ADMIN)
    assert invalid.status_code == 422
    assert (await stack.http.get("/tickets")).status_code == 401
    assert (await stack.http.get(f"/no/such/route/{ticket_id}")).status_code == 404

    response = await stack.http.get("/metrics")
    after = samples(response.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "escalator_http_requests_total"
    assert delta(requests, method="POST", route="/tickets", status="201") == 1
    assert delta(requests, method="POST", route="/tickets", status="422") == 1
    assert delta(requests, method="GET", route="/tickets/{ticket_id}", status="200") == 1
    assert delta(requests, method="GET", route="/tickets/{ticket_id}", status="404") == 1
    assert delta(requests, method="GET", route="/tickets", status="401") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    # Route templates only: no ticket id, known or unknown, is ever a label.
    assert ticket_id not in response.text and "nosuchticket" not in response.text
    assert delta("escalator_intake_duration_seconds_count", status="201") == 1
    assert delta("escalator_intake_duration_seconds_count", status="422") == 1
    assert delta("escalator_intake_duration_seconds_bucket", status="201", le="+Inf") == 1
    assert delta("escalator_intake_duration_seconds_sum", status="201") > 0
    assert delta("escalator_refusals_total", rule="invalid_request", status="422") == 1
    assert delta("escalator_refusals_total", rule="unauthenticated", status="401") == 1
    assert delta("escalator_refusals_total", rule="unknown_ticket", status="404") == 1
    assert delta("escalator_refusals_total", rule="unknown_route", status="404") == 1
    assert "# HELP escalator_refusals_total" in response.text


def ticket_row(ticket_id: str, tier: Tier, level: int, status: TicketStatus, **changes: Any) -> TicketRow:
    received_at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    row = TicketRow(
        ticket_id=ticket_id,
        workflow_id=workflow_id_for(ticket_id),
        customer_id="acme",
        partner_id=None,
        contract_id="ctr-acme",
        policy_version="2025.1",
        title="Audit export fails",
        product=Product.AUDIT,
        product_type=ProductType.PLATFORM,
        tier=tier,
        severity=Severity.HIGH,
        status=status,
        level=level,
        owning_line=OwningLine.CONNECTSOFT,
        received_at=received_at,
        response_due=received_at + timedelta(hours=1),
        sla_breached=False,
        updated_at=received_at,
    )
    return row.model_copy(update=changes)


def sla_event(seq: int, kind: EventKind) -> TicketEvent:
    return TicketEvent(seq=seq, at=datetime(2026, 11, 2, 10, seq, tzinfo=UTC), kind=kind, summary=kind.value)


async def test_metrics_count_open_tickets_breaches_and_warnings_from_the_read_model(db_stack: Stack) -> None:
    read_model = TicketReadModel(db_stack.sessionmaker)
    records = [
        TicketRecord(row=ticket_row("p1", Tier.PREMIUM, 1, TicketStatus.OPEN)),
        TicketRecord(
            row=ticket_row("p2", Tier.PREMIUM, 2, TicketStatus.ACKNOWLEDGED, sla_breached=True),
            events=[
                sla_event(1, EventKind.SLA_WARNING),
                sla_event(2, EventKind.SLA_BREACHED),
                sla_event(3, EventKind.UPDATE_OVERDUE),
            ],
        ),
        TicketRecord(
            row=ticket_row(
                "p3", Tier.PREMIUM, 2, TicketStatus.WAITING_ON_CUSTOMER, partner_sla_breached=True
            ),
            events=[sla_event(1, EventKind.SLA_WARNING), sla_event(2, EventKind.COMMENTED)],
        ),
        TicketRecord(row=ticket_row("s1", Tier.STANDARD, 3, TicketStatus.OPEN, sla_breached=True)),
        # Done with: not open, whatever they breached.
        TicketRecord(row=ticket_row("s2", Tier.STANDARD, 3, TicketStatus.RESOLVED, sla_breached=True)),
        TicketRecord(row=ticket_row("b1", Tier.BASIC, 1, TicketStatus.CLOSED)),
    ]
    for record in records:
        await read_model.record_ticket(record)

    scraped = await scrape(db_stack.http)

    assert value(scraped, "escalator_read_model_up") == 1
    open_tickets = {
        (tier.value, level): value(scraped, "escalator_open_tickets", tier=tier.value, level=str(level))
        for tier in Tier
        for level in (1, 2, 3, 4)
    }
    expected = dict.fromkeys(open_tickets, 0.0) | {("premium", 1): 1, ("premium", 2): 2, ("standard", 3): 1}
    assert open_tickets == expected
    # Every combination is there, at 0 if need be, so no series vanishes.
    assert ("escalator_open_tickets", frozenset({("tier", "basic"), ("level", "4")})) in scraped
    breached = "escalator_open_tickets_breached"
    assert value(scraped, breached, tier="premium", level="2", line="connectsoft") == 1
    assert value(scraped, breached, tier="premium", level="2", line="partner") == 1
    assert value(scraped, breached, tier="standard", level="3", line="connectsoft") == 1
    assert value(scraped, breached, tier="standard", level="3", line="partner") == 0
    events = "escalator_sla_events_total"
    assert value(scraped, events, kind="sla_warning") == 2
    assert value(scraped, events, kind="sla_breached") == 1
    assert value(scraped, events, kind="update_overdue") == 1


async def test_metrics_answer_without_the_read_model_while_the_database_refuses(
    dev_env: WorkflowEnvironment,
) -> None:
    closed = f"postgresql+asyncpg://escalator@127.0.0.1:{free_port()}/escalator"
    app = create_app(stack_settings(dev_env, closed))
    async with serving(app) as http:
        response = await http.get("/metrics")

    assert response.status_code == 200
    scraped = samples(response.text)
    assert value(scraped, "escalator_read_model_up") == 0
    assert not any(name == "escalator_open_tickets" for name, _ in scraped)
    # What the process counts itself is still there.
    assert "escalator_http_requests_total" in {name for name, _ in scraped}


# --- /readyz ----------------------------------------------------------------------------------


async def test_readyz_answers_200_when_temporal_and_the_database_answer(stack: Stack) -> None:
    response = await stack.http.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_is_503_until_the_database_answers_while_healthz_stays_200(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # SQLite cannot open a file in a directory that does not exist; make_engine made it, so
    # take it away again until the database is to "come back".
    directory = tmp_path / "db"
    app = create_app(stack_settings(dev_env, f"sqlite+aiosqlite:///{directory / 'escalator.db'}"))
    async with serving(app) as http:
        # The API read the published policies as it started (store/published_policies.py):
        # let go of that pooled connection and the file it made, so nothing holds it open.
        await app.state.sessionmaker.kw["bind"].dispose()
        for leftover in directory.iterdir():
            leftover.unlink()
        directory.rmdir()
        down = await http.get("/readyz")
        alive = await http.get("/healthz")
        directory.mkdir()
        up = await http.get("/readyz")

    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    problem = down.json()
    assert problem["rule"] == "not_ready"
    assert "the database did not answer" in problem["detail"]
    assert "Temporal" not in problem["detail"]
    assert "escalator.db" not in problem["detail"]  # no URL or path in a public answer
    assert down.headers["retry-after"] == "5"
    assert alive.status_code == 200
    assert up.status_code == 200


async def test_readyz_is_503_naming_temporal_once_its_server_stops(tmp_path: Path) -> None:
    server = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server")
    )
    stopped = False
    try:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}",
            temporal_address=server.client.service_client.config.target_host,
        )
        app = create_app(settings)
        async with serving(app) as http:
            ready = await http.get("/readyz")
            await server.shutdown()
            stopped = True
            down = await http.get("/readyz")
            alive = await http.get("/healthz")
    finally:
        if not stopped:
            await server.shutdown()

    assert ready.status_code == 200, ready.text
    assert down.status_code == 503
    assert down.json()["rule"] == "not_ready"
    assert "Temporal did not answer" in down.json()["detail"]
    assert "database" not in down.json()["detail"]
    assert alive.status_code == 200


# --- The worker's Temporal SDK metrics ---------------------------------------------------------


async def test_worker_serves_the_sdk_metrics_on_its_own_port(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    settings = stack_settings(
        dev_env, f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}", worker_metrics_port=port
    )
    runtime = worker_runtime(settings)
    assert runtime is not None
    client = await connect_client(settings, runtime=runtime)
    engine = make_engine(settings.database_url)
    await migrate(engine)
    # A second worker writes to a database without the schema: its record activity fails.
    broken = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-schema.db'}")
    broken_settings = settings.model_copy(update={"task_queue": f"{settings.task_queue}-broken"})
    second_failure = asyncio.Event()
    failures = FailedActivityCounter(second_failure)
    try:
        async with (
            build_worker(client, make_sessionmaker(engine), settings),
            build_worker(client, make_sessionmaker(broken), broken_settings),
        ):
            opened = opened_ticket("acme", 3, datetime.now(UTC))
            handle = await client.start_workflow(
                TicketWorkflow.run,
                opened,
                id=workflow_id_for(opened.ticket_id),
                task_queue=settings.task_queue,
            )
            await wait_for_event(handle, completed_activity("notify_and_record"))
            failing = opened_ticket("acme", 3, datetime.now(UTC))
            with failures.watching():
                failing_handle = await client.start_workflow(
                    TicketWorkflow.run,
                    failing,
                    id=workflow_id_for(failing.ticket_id),
                    task_queue=broken_settings.task_queue,
                )
                # The second attempt runs once the first one's failure has been reported.
                await asyncio.wait_for(second_failure.wait(), 60)
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://127.0.0.1:{port}/metrics")
            await handle.execute_update("close", TEST_OVER)
            await failing_handle.terminate("test over")
    finally:
        await engine.dispose()
        await broken.dispose()

    assert response.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    # The SDK's own names (Core's, `temporal_` prefixed; durations in milliseconds).
    assert families["temporal_workflow_task_schedule_to_start_latency"].type == "histogram"
    assert families["temporal_activity_schedule_to_start_latency"].type == "histogram"
    assert families["temporal_sticky_cache_size"].type == "gauge"
    assert families["temporal_sticky_cache_hit"].type == "counter"
    assert families["temporal_activity_execution_latency"].type == "histogram"
    failed = [
        sample.value
        for sample in families["temporal_activity_execution_failed"].samples
        if sample.labels.get("activity_type") == "record_ticket"
    ]
    assert failed and failed[0] >= 1


def task_completed_after_a_signal() -> Callable[[HistoryEvent], bool]:
    signalled = False

    def predicate(event: HistoryEvent) -> bool:
        nonlocal signalled
        signalled = signalled or event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        return signalled and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED

    return predicate


class FailedActivityCounter(logging.Handler):
    """Sets `event` at the second failed attempt of an activity, which the SDK logs as
    "Completing activity as failed" with the activity's details."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__(logging.WARNING)
        self.event = event
        self.count = 0
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "Completing activity as failed" in record.getMessage():
            self.records.append(record)
            self.count += 1
            if self.count >= 2:
                self.event.set()

    @contextmanager
    def watching(self) -> Iterator[None]:
        logger = logging.getLogger("temporalio.activity")
        logger.addHandler(self)
        try:
            yield
        finally:
            logger.removeHandler(self)


def test_a_taken_metrics_port_leaves_the_worker_running_without_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(worker_metrics_port=taken.getsockname()[1])
        with caplog.at_level(logging.ERROR, logger="runtime.telemetry"):
            runtime = worker_runtime(settings)

    assert runtime is None
    assert "ESCALATOR_WORKER_METRICS_PORT" in caplog.text
    assert worker_runtime(Settings(worker_metrics_port=0)) is None


# --- JSON logs ----------------------------------------------------------------------------------


@contextmanager
def json_log_lines(*loggers: str) -> Iterator[list[dict[str, Any]]]:
    """Every record of these loggers, formatted by the JSON formatter and parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    lines: list[dict[str, Any]] = []
    targets = [logging.getLogger(name) for name in loggers]
    previous = [(target, target.level) for target in targets]
    for target in targets:
        target.addHandler(handler)
        target.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        for target, level in previous:
            target.removeHandler(handler)
            target.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_json_logs_of_a_workflow_and_its_activities_carry_the_ticket_and_workflow_ids(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = stack_settings(dev_env, f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}")
    client: Client = dev_env.client
    engine = make_engine(settings.database_url)
    await migrate(engine)
    broken = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-schema.db'}")
    broken_settings = settings.model_copy(update={"task_queue": f"{settings.task_queue}-broken"})
    opened = opened_ticket("acme", 3, datetime.now(UTC))
    failing = opened_ticket("acme", 3, datetime.now(UTC))
    first_failure = asyncio.Event()
    try:
        with json_log_lines("temporalio.workflow", "temporalio.activity") as lines:
            async with (
                build_worker(client, make_sessionmaker(engine), settings),
                build_worker(client, make_sessionmaker(broken), broken_settings),
            ):
                handle = await client.start_workflow(
                    TicketWorkflow.run,
                    opened,
                    id=workflow_id_for(opened.ticket_id),
                    task_queue=settings.task_queue,
                )
                await wait_for_event(handle, completed_activity("notify_and_record"))
                # A signal the ticket refuses: the workflow logs it (workflow.logger).
                await handle.signal("resume-signal", Resume(actor=SYSTEM, note="not waiting"))
                await wait_for_event(handle, task_completed_after_a_signal())
                # An activity that fails: the SDK logs it (activity.logger).
                failures = FailedActivityCounter(first_failure)
                with failures.watching():
                    failing_handle = await client.start_workflow(
                        TicketWorkflow.run,
                        failing,
                        id=workflow_id_for(failing.ticket_id),
                        task_queue=broken_settings.task_queue,
                    )
                    await asyncio.wait_for(first_failure.wait(), 60)
                await handle.execute_update("close", TEST_OVER)
                await failing_handle.terminate("test over")
    finally:
        await engine.dispose()
        await broken.dispose()

    ignored = [line for line in lines if line["message"].startswith("Ignored Resume signal")]
    assert ignored, lines
    assert ignored[0]["ticket_id"] == opened.ticket_id
    assert ignored[0]["workflow_id"] == f"ticket-{opened.ticket_id}"
    assert ignored[0]["level"] == "WARNING" and ignored[0]["logger"] == "temporalio.workflow"
    failed = [line for line in lines if "Completing activity as failed" in line["message"]]
    assert failed, lines
    assert failed[0]["ticket_id"] == failing.ticket_id
    assert failed[0]["workflow_id"] == f"ticket-{failing.ticket_id}"
    assert failed[0]["temporal"]["activity_type"] == "record_ticket"
    assert "exception" in failed[0]


async def test_json_access_log_of_a_ticket_request_carries_the_ticket_id(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through a real uvicorn, as `escalator api` serves: its access lines name the ticket of
    a ticket route, and the new ticket of an intake."""
    settings = stack_settings(dev_env, f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}")
    engine = make_engine(settings.database_url)
    await migrate(engine)
    async with make_sessionmaker(engine)() as session:
        await seed_demo_catalog(session=session)
        await seed_demo_keys(session=session)
    app = create_app(settings, engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    # Listening before uvicorn starts: requests wait in the backlog until it serves them.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    try:
        with json_log_lines("uvicorn.access") as lines:
            serving_task = asyncio.create_task(server.serve(sockets=[listening]))
            async with build_worker(dev_env.client, make_sessionmaker(engine), settings):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    filed = await http.post("/tickets", json=LOGIN_DOWN, headers=ADMIN)
                    ticket_id = filed.json()["ticket_id"]
                    read = await http.get(f"/tickets/{ticket_id}", headers=ADMIN)
                    listed = await http.get("/tickets", headers=ADMIN)
                    await dev_env.client.get_workflow_handle(workflow_id_for(ticket_id)).execute_update(
                        "close", TEST_OVER
                    )
            server.should_exit = True
            await serving_task
    finally:
        listening.close()
        await engine.dispose()

    assert (filed.status_code, read.status_code, listed.status_code) == (201, 200, 200)
    by_path = {(line["http_method"], line["http_path"]): line for line in lines}
    intake = by_path[("POST", "/tickets")]
    assert intake["ticket_id"] == ticket_id and intake["workflow_id"] == f"ticket-{ticket_id}"
    assert intake["http_status"] == 201
    assert by_path[("GET", f"/tickets/{ticket_id}")]["ticket_id"] == ticket_id
    # A request about no ticket in particular names none.
    assert "ticket_id" not in by_path[("GET", "/tickets")]


@pytest.mark.parametrize(
    ("workflow_id", "ticket_id"),
    [
        ("ticket-3f2a9c1b7d4e", "3f2a9c1b7d4e"),
        ("ticket-3f2a9c1b7d4e-deliveries", "3f2a9c1b7d4e"),
        ("ticket-t-1", "t-1"),
        ("bench-noop-1", None),
        ("ticket-", None),
    ],
)
def test_the_ticket_id_comes_from_a_ticket_workflow_or_its_child(
    workflow_id: str, ticket_id: str | None
) -> None:
    assert ticket_id_of(workflow_id) == ticket_id


def test_json_formatter_writes_one_object_with_the_callers_fields_and_the_exception() -> None:
    formatter = JsonLogFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("escalator.test").makeRecord(
            "escalator.test",
            logging.ERROR,
            __file__,
            1,
            "sync of %s failed",
            ("ticket-abc",),
            exc_info=sys.exc_info(),
            extra={
                "temporal_activity": {"workflow_id": "ticket-abc", "activity_type": "record_ticket"},
                "rows": 3,
            },
        )
    line = formatter.format(record)

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "sync of ticket-abc failed"
    assert (parsed["ticket_id"], parsed["workflow_id"]) == ("abc", "ticket-abc")
    assert parsed["rows"] == 3
    assert parsed["level"] == "ERROR" and parsed["logger"] == "escalator.test"
    assert "ValueError: boom" in parsed["exception"]
    assert datetime.fromisoformat(parsed["time"]).tzinfo is not None


# --- `escalator up` hands every setting to its children ------------------------------------------


def test_child_environment_spells_lists_dicts_and_secrets_so_the_children_parse_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = Settings(
        smtp_url="smtp://support:s3cret@127.0.0.1:2525",
        partner_pager_routing_keys={"northwind": "nw-routing-key"},
        codec_cors_origins=["http://127.0.0.1:8233"],
        worker_metrics_port=9999,
        log_format="json",
    )
    for variable, setting in supervisor.child_environment(parent).items():
        if variable.startswith("ESCALATOR_"):
            monkeypatch.setenv(variable, setting)

    child = Settings()

    assert (
        child.smtp_url is not None
        and child.smtp_url.get_secret_value() == "smtp://support:s3cret@127.0.0.1:2525"
    )
    assert child.partner_pager_routing_keys["northwind"].get_secret_value() == "nw-routing-key"
    assert child.codec_cors_origins == ["http://127.0.0.1:8233"]
    assert (child.worker_metrics_port, child.log_format, child.tracing) == (9999, "json", False)
