"""Issue 17 §3: while the read model (or Temporal) is away every route and console page answers a 503 problem
(or page) with Retry-After, never a bare 500; right after it is back the API answers normally,
at the first attempt, because the pool tests a connection before it lends it.

On PostgreSQL (when ESCALATOR_TEST_POSTGRES_URL is set) the database sits behind a TCP gate
that refuses and cuts connections, as a restart or a partition does; on SQLite its directory is
taken away, so no connection can be opened.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from api.console.session import SESSION_COOKIE
from api.main import create_app
from api.principal_cache import PrincipalCache
from runtime.settings import Settings
from store.db import async_database_url, make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from tests.drill_support import TcpGate
from tests.fixtures_api import console_session_id, recorded_timeline, running_stack, seed_console_sessions
from tests.fixtures_db import DB_BACKENDS, POSTGRES_URL
from tests.fixtures_temporal import BIN_DIR

SUPPORT = "dev-support"
TICKET = {
    "customer_id": "acme",
    "title": "Audit export fails",
    "description": "The nightly export stops at 80%",
    "severity": 3,
    "product": "audit",
    "channel": "email",
    "category": "bug",
}


@dataclass
class Outage:
    """Takes the stack's database away and brings it back."""

    engine: AsyncEngine
    gate: TcpGate | None = None
    directory: Path | None = None

    async def begin(self) -> None:
        if self.gate is not None:
            self.gate.refuse()  # refuses new connections and cuts the pooled ones
            return
        assert self.directory is not None
        # SQLite cannot cut a connection: drop the pooled ones, and let no new one open.
        await self.engine.dispose()
        self.directory.rename(self.directory.with_name("away"))

    async def end(self) -> None:
        if self.gate is not None:
            self.gate.admit()
            return
        assert self.directory is not None
        self.directory.with_name("away").rename(self.directory)


@asynccontextmanager
async def outage_prone_database(backend: str, tmp_path: Path) -> AsyncIterator[Outage]:
    if backend == "sqlite":
        directory = tmp_path / "db"
        engine = make_engine(f"sqlite+aiosqlite:///{directory / 'escalator.db'}")
        try:
            yield Outage(engine, directory=directory)
        finally:
            await engine.dispose()
        return
    assert POSTGRES_URL is not None
    direct = async_database_url(POSTGRES_URL)
    schema = f"outage_{uuid.uuid4().hex[:12]}"
    admin = make_engine(direct, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with TcpGate(direct.host or "127.0.0.1", direct.port or 5432) as gate:
            gated = direct.set(host="127.0.0.1", port=gate.port)
            engine = make_engine(gated, connect_args={"server_settings": {"search_path": schema}})
            try:
                yield Outage(engine, gate=gate)
            finally:
                gate.admit()
                await engine.dispose()
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def assert_unavailable(response: httpx.Response, *, page: bool = False) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    assert response.headers["retry-after"] == "5"
    if page:
        assert response.headers["content-type"].startswith("text/html")
        assert "Unavailable for a moment" in response.text
        return
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["rule"], problem["type"]) == (
        "database_unavailable",
        "urn:escalator:problem:database_unavailable",
    )
    assert problem["title"] == "Service Unavailable" and "retry in 5 seconds" in problem["detail"]


@pytest.mark.parametrize("backend", DB_BACKENDS)
async def test_a_database_outage_answers_503_with_retry_after_and_then_normally(
    dev_env: WorkflowEnvironment, tmp_path: Path, backend: str
) -> None:
    async with outage_prone_database(backend, tmp_path) as outage:
        # No principal cache: every request asks the database for its key (the cache's own
        # outage test is the next one).
        async with running_stack(dev_env, outage.engine, principal_cache_seconds=0.0) as stack:
            support = stack.as_(SUPPORT)
            console = {"Cookie": f"{SESSION_COOKIE}={console_session_id(SUPPORT)}"}
            filed = await stack.http.post("/tickets", json=TICKET, headers=support)
            assert filed.status_code == 201, filed.text
            ticket_id = filed.json()["ticket_id"]
            retry_key = {"Idempotency-Key": f"mail-{uuid.uuid4().hex}"}

            # Cut while the pool idles (a database restart between two requests): the next
            # request is answered at its first attempt, on a connection tested before use.
            await outage.begin()
            await outage.end()
            after_restart = await stack.http.get(f"/tickets/{ticket_id}", headers=support)
            assert after_restart.status_code == 200, after_restart.text

            await outage.begin()
            try:
                # Every request needs the database for its key, at least.
                assert_unavailable(await stack.http.get(f"/tickets/{ticket_id}", headers=support))
                assert_unavailable(await stack.http.get("/tickets", headers=support))
                assert_unavailable(
                    await stack.http.post("/tickets", json=TICKET, headers=support | retry_key)
                )
                assert_unavailable(
                    await stack.http.post(
                        f"/tickets/{ticket_id}/comment", json={"body": "Any news?"}, headers=support
                    )
                )
                assert_unavailable(await stack.http.get("/api-keys", headers=stack.as_("dev-admin")))
                assert_unavailable(await stack.http.get("/console", headers=console), page=True)
                assert_unavailable(
                    await stack.http.get(f"/console/tickets/{ticket_id}", headers=console), page=True
                )
            finally:
                await outage.end()

            # Right after: the first attempt of each answers, on connections the outage cut.
            shown = await stack.http.get(f"/tickets/{ticket_id}", headers=support)
            assert shown.status_code == 200, shown.text
            assert (await stack.http.get("/console", headers=console)).status_code == 200
            # The intake refused during the outage, retried with its key, files one ticket.
            retried = await stack.http.post("/tickets", json=TICKET, headers=support | retry_key)
            again = await stack.http.post("/tickets", json=TICKET, headers=support | retry_key)
            assert (retried.status_code, again.status_code) == (201, 200), retried.text
            assert retried.json()["ticket_id"] == again.json()["ticket_id"]


@pytest.mark.parametrize("backend", DB_BACKENDS)
async def test_in_a_database_outage_a_recently_seen_key_still_reads_and_acts_on_a_tickets_workflow(
    dev_env: WorkflowEnvironment, tmp_path: Path, backend: str
) -> None:
    """The principal cache (api/principal_cache.py) knows a key used within its bound: what
    needs only the workflow (a ticket's live state, an action) answers through the outage, and
    the action is recorded once the database is back. A key not seen lately is a 503."""
    async with outage_prone_database(backend, tmp_path) as outage:
        async with running_stack(dev_env, outage.engine) as stack:
            app = stack.http._transport.app  # type: ignore[attr-defined]
            app.state.principal_cache = PrincipalCache(5.0, clock=lambda: 0.0)  # time stands still
            support = stack.as_(SUPPORT)
            filed = await stack.http.post("/tickets", json=TICKET, headers=support)
            assert filed.status_code == 201, filed.text
            ticket_id = filed.json()["ticket_id"]

            await outage.begin()
            try:
                live = await stack.http.get(f"/tickets/{ticket_id}", headers=support)
                assert live.status_code == 200, live.text
                comment = {"body": "Any news?"}
                acted = await stack.http.post(f"/tickets/{ticket_id}/comment", json=comment, headers=support)
                assert acted.status_code == 200, acted.text
                assert_unavailable(await stack.http.get("/tickets", headers=support))
                assert_unavailable(await stack.http.get("/api-keys", headers=stack.as_("dev-admin")))
            finally:
                await outage.end()

            timeline = await recorded_timeline(stack, ticket_id)
            assert [event.kind for event in timeline].count("commented") == 1


async def test_a_temporal_outage_answers_503_with_retry_after_on_routes_and_console_pages(
    tmp_path: Path,
) -> None:
    """The workflow service stops (a server of the test's own): reads, actions and intake
    answer a 503 problem, console pages a 503 page, each with Retry-After."""
    server = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server")
    )
    stopped = False
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}")
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            await seed_demo_catalog(session=session)
            await seed_demo_keys(session=session)
            await seed_console_sessions(session)
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            temporal_address=server.client.service_client.config.target_host,
        )
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                await server.shutdown()
                stopped = True
                support, console = (
                    {"Authorization": f"Bearer {SUPPORT}"},
                    {"Cookie": f"{SESSION_COOKIE}={console_session_id(SUPPORT)}"},
                )
                answers = [
                    await http.get("/tickets/0123456789ab", headers=support),
                    await http.post("/tickets/0123456789ab/comment", json={"body": "hi"}, headers=support),
                    await http.post("/tickets", json=TICKET, headers=support),
                ]
                page = await http.get("/console/tickets/0123456789ab", headers=console)
    finally:
        if not stopped:
            await server.shutdown()
        await engine.dispose()

    for response in answers:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.headers["retry-after"] == "5"
        assert response.json()["rule"] == "temporal_unavailable"
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert "Unavailable for a moment" in page.text
