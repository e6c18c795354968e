"""A real browser (Debian's chromium, driven by Playwright) against the console on a real
uvicorn, one stack per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright
from temporalio.testing import WorkflowEnvironment

from tests.browser.site import CHROMIUM, Site, running_console


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does) so no browser is downloaded"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        await launched.close()


@pytest_asyncio.fixture(scope="module")
async def site(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    db: Path = tmp_path_factory.mktemp("console") / "console.db"
    async with running_console(dev_env.client, db) as running:
        yield running
