"""The FastAPI app: intake, actions and queries over the ticket workflows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

import policies
from api import console, errors, observability
from api.middleware import BodyLimitMiddleware
from api.principal_cache import PrincipalCache
from api.routers import (
    api_keys,
    codec,
    contacts,
    customers,
    health,
    incidents,
    partners,
    policy,
    reports,
    support_teams,
    tickets,
)
from api.routers.codec import CodecCorsMiddleware
from runtime.settings import Settings, get_settings
from runtime.telemetry import process_tracer_provider
from runtime.temporal import connect_client
from store import published_policies
from store.catalog import TermsByRevision
from store.db import make_engine, make_sessionmaker


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The app. `engine` lends it a database engine that its caller owns (tests do);
    without one, the lifespan makes one from the settings and disposes of it. Requests and
    the Temporal calls they make are traced on `tracer_provider`, by default the process's
    when ESCALATOR_TRACING is on (runtime/telemetry.py)."""
    policies.install()
    settings = settings or get_settings()
    tracer_provider = tracer_provider or process_tracer_provider(settings, service_name="escalator-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One Temporal client and one engine per process, for every request.
        own_engine = engine or make_engine(settings.database_url)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(own_engine)
        app.state.temporal_client = await connect_client(settings, tracer_provider=tracer_provider)
        # The versions an admin published: the newest is the one intake pins, from the first
        # request on.
        await published_policies.refresh(app.state.sessionmaker)
        stop_refresh = asyncio.Event()
        refresh = asyncio.create_task(
            published_policies.keep_installed(
                app.state.sessionmaker, settings.policy_refresh_seconds, stop_refresh
            ),
            name="policy-refresh",
        )
        try:
            yield
        finally:
            stop_refresh.set()
            await refresh
            if engine is None:
                await own_engine.dispose()

    app = FastAPI(
        title="ConnectSoft escalation orchestrator",
        version="0.1.0",
        description="Support tickets as durable Temporal workflows: intake, SLA clocks, "
        "the L1-L4 escalation ladder and partner handoffs.",
        lifespan=lifespan,
        # Every error body is a problem (application/problem+json), whatever the route.
        responses=errors.problem_responses(400, 413, 422, 503),
        # Log lines of a request on a ticket carry its id.
        dependencies=[observability.TICKET_CONTEXT],
    )
    # Who is calling, by key, for a few seconds (api/principal_cache.py).
    app.state.principal_cache = PrincipalCache(settings.principal_cache_seconds)
    # Intake's contract terms by contract revision (store/catalog.py).
    app.state.terms_by_revision = TermsByRevision()
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware)
    # The Temporal UI calls /codec/* from the browser: CORS for its origins, on that path only.
    app.add_middleware(CodecCorsMiddleware, origins=settings.codec_cors_origins)
    # Metrics, the request's ticket for the logs, and tracing: outside the middleware above,
    # so that they see every answer, those middleware's own too.
    observability.install(app, tracer_provider=tracer_provider)
    app.include_router(tickets.router)
    app.include_router(tickets.action_router())
    app.include_router(policy.router)
    app.include_router(health.router)
    app.include_router(customers.router)
    app.include_router(partners.router)
    app.include_router(contacts.router)
    app.include_router(support_teams.router)
    app.include_router(api_keys.router)
    app.include_router(reports.router)
    app.include_router(incidents.router)
    app.include_router(codec.router)
    console.install(app)
    return app


app = create_app()
