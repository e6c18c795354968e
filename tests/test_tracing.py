"""OpenTelemetry tracing (issue 10): one trace from `POST /tickets` through the workflow and its
activities, on a real dev server, captured by an in-memory span exporter."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from runtime.settings import Settings
from runtime.telemetry import process_tracer_provider
from runtime.temporal import connect_client
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from tests.factories import close_when_done
from tests.fixtures_api import completed_activity, wait_for_event
from worker.worker import build_worker
from workflows.models import workflow_id_for

LOGIN_DOWN = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 3,
    "product": "identity",
    "channel": "email",
    "category": "incident",
}


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    named = [span for span in spans if span.name == name]
    assert named, f"no span {name!r} among {sorted({span.name for span in spans})}"
    return named[0]


def is_child_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None and parent.context is not None
    return child.parent.span_id == parent.context.span_id


async def test_one_trace_runs_from_post_tickets_through_the_workflow_and_its_activities(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}",
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"tickets-{uuid.uuid4().hex[:8]}",
        tracing=True,
    )
    engine = make_engine(settings.database_url)
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
        await seed_demo_keys(session=session)
    app = create_app(settings, engine=engine, tracer_provider=provider)
    # The worker's own client, as `escalator worker` makes it: its worker takes the interceptor.
    worker_client = await connect_client(settings, tracer_provider=provider)
    try:
        async with app.router.lifespan_context(app), build_worker(worker_client, sessionmaker, settings):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api"
            ) as http:
                filed = await http.post(
                    "/tickets", json=LOGIN_DOWN, headers={"Authorization": "Bearer dev-admin"}
                )
                assert filed.status_code == 201, filed.text
                probe = await http.get("/healthz")
            handle = worker_client.get_workflow_handle(workflow_id_for(filed.json()["ticket_id"]))
            await wait_for_event(handle, completed_activity("notify_and_record"))
            await close_when_done(handle)
    finally:
        await engine.dispose()

    assert probe.status_code == 200
    spans = list(exporter.get_finished_spans())
    server = only(spans, "POST /tickets")
    start = only(spans, "StartWorkflow:TicketWorkflow")
    run = only(spans, "RunWorkflow:TicketWorkflow")
    start_activity = only(spans, "StartActivity:notify_and_record")
    run_activity = only(spans, "RunActivity:notify_and_record")

    assert server.kind == SpanKind.SERVER and server.parent is None
    assert server.attributes is not None and server.attributes.get("http.route") == "/tickets"
    chain = [server, start, run, start_activity, run_activity]
    assert len({span.context.trace_id for span in chain if span.context}) == 1
    # Temporal's TracingInterceptor hangs the workflow's spans (RunWorkflow, and StartActivity
    # for each activity it schedules) under the span that started it, each activity's run
    # under its start: POST /tickets > StartWorkflow > RunWorkflow, StartActivity > RunActivity.
    assert is_child_of(start, server)
    assert is_child_of(run, start)
    assert is_child_of(start_activity, start)
    assert is_child_of(run_activity, start_activity)
    # Probes are not traced: they would drown the traces that matter.
    assert not [span for span in spans if "/healthz" in span.name]


async def test_tracing_is_off_by_default(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}",
        temporal_address=dev_env.client.service_client.config.target_host,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        interceptors = app.state.temporal_client.config()["interceptors"]

    assert process_tracer_provider(settings, service_name="escalator-api") is None
    assert not [i for i in interceptors if isinstance(i, TracingInterceptor)]
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
