"""The console on a real HTTP server, for a real browser: uvicorn on 127.0.0.1 (a free port),
the app with its lifespan, a real worker and the read model on SQLite, against a Temporal
dev server. Used by the browser tests and by `python -m tests.browser.screenshots`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.main import create_app
from runtime.settings import Settings
from store.catalog import create_customer
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from worker.worker import build_worker

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe-4.11.1.min.js"
# A Standard customer whose Sev 2 first response is due 1 minute after intake (24x7), the
# shortest target a contract may set: the countdown's amber and red, seen for real.
SHORT_CUSTOMER = "hooli"
SHORT_CONTRACT: dict[str, Any] = {
    "tier": "standard",
    "product_type": "platform",
    "timezone": "UTC",
    "overrides": {"response": {"2": {"minutes": 1, "calendar": "24x7"}}},
}
# How often the queue and the ticket's clocks refresh themselves in these tests.
REFRESH_SECONDS = 2


@dataclass
class Site:
    url: str
    api: httpx.AsyncClient
    client: Client
    task_queue: str
    # The read model, to seed recorded tickets (the What if page's source).
    sessionmaker: async_sessionmaker[AsyncSession]

    @staticmethod
    def as_(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    async def file(
        self, customer: str, *, severity: int = 3, title: str | None = None, key: str = "dev-admin"
    ) -> str:
        product = {"contoso": "partner_solution", "umbrella": "bespoke"}.get(customer, "audit")
        body = {
            "customer_id": customer,
            "title": title or f"Export fails {uuid.uuid4().hex[:6]}",
            "description": "The nightly export stops at 80%",
            "severity": severity,
            "product": product,
            "channel": "email",
            "category": "bug",
        }
        response = await self.api.post("/tickets", json=body, headers=self.as_(key))
        assert response.status_code == 201, response.text
        ticket_id: str = response.json()["ticket_id"]
        return ticket_id


def listening_socket() -> socket.socket:
    """A socket bound and listening before the server runs: connections wait in its backlog
    until uvicorn accepts them, so nothing has to poll for the server to come up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def running_console(client: Client, db_path: Path, *, log_level: str = "info") -> AsyncIterator[Site]:
    engine = make_engine(f"sqlite+aiosqlite:///{db_path}")
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        temporal_address=client.service_client.config.target_host,
        task_queue=f"tickets-{uuid.uuid4().hex[:8]}",
    )
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
        await seed_demo_keys(session=session)
        await create_customer(session=session, customer_id=SHORT_CUSTOMER, name="Hooli", **SHORT_CONTRACT)
    app = create_app(settings, engine=engine)
    app.state.console_refresh_seconds = REFRESH_SECONDS
    sock = listening_socket()
    port = sock.getsockname()[1]
    # log_config=None: uvicorn's loggers (its access log too) propagate to the root logger, where
    # pytest's caplog reads exactly the lines `escalator api` writes.
    config = uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=True, log_config=None)
    server = uvicorn.Server(config)
    try:
        async with build_worker(client, sessionmaker, settings):
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            url = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(base_url=url, timeout=30) as api:
                    yield Site(url, api, client, settings.task_queue, sessionmaker)
            finally:
                server.should_exit = True
                await serving
    finally:
        sock.close()
        await engine.dispose()


async def new_page(browser: Browser, site: Site, **options: Any) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(base_url=site.url, **options)
    page = await context.new_page()
    return context, page


async def sign_in(page: Page, secret: str) -> None:
    """Sign in as a person does: the console sends an anonymous visitor to the sign-in form."""
    await page.goto("/console")
    await expect(page).to_have_url("/console/sign-in?next=%2Fconsole")
    await page.get_by_label("API key").fill(secret)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is (needs bypass_csp)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return found
