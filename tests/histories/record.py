"""Record the committed replay histories: `.venv/bin/python -m tests.histories.record`.

Runs a full ticket life on the time-skipping server with the real worker and activities
(SQLite in a temp dir), then writes each workflow's history as JSON next to this file.
Re-record only on purpose: a history that no longer replays is a breaking change.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db import make_engine, make_sessionmaker, migrate
from activities.notifications import Notifier
from activities.read_model import TicketReadModel
from tests.factories import opened_ticket
from workflows import search_attributes
from workflows.models import Acknowledge, Close, Comment, Resolve, workflow_id_for
from workflows.ticket import TicketWorkflow

HERE = Path(__file__).parent


async def record() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: k.indexed_value_type for k in search_attributes.ALL_KEYS},
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/record.db")
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        async with Worker(
            env.client,
            task_queue="tickets",
            workflows=[TicketWorkflow],
            activities=[TicketReadModel(sessions).sync_ticket, Notifier(sessions).notify],
        ):
            received = (await env.get_current_time()).replace(microsecond=0)
            opened = opened_ticket("acme", 1, received, channel="on_call")
            opened.ticket_id = "replay0001"
            handle = await env.client.start_workflow(
                TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue="tickets"
            )
            # Breach at 1 h, escalation to L4, then the L4 acknowledgement and a resolution.
            await env.sleep(timedelta(hours=1, minutes=5))
            await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor="cto"))
            await handle.execute_update(TicketWorkflow.comment, Comment(actor="cto", body="Rolled back"))
            await env.sleep(timedelta(hours=2))  # an overdue customer update fires meanwhile
            await handle.execute_update(TicketWorkflow.resolve, Resolve(actor="eng", resolution="fixed"))
            await handle.execute_update(TicketWorkflow.close, Close(actor="eng"))
            await handle.result()
            history = await handle.fetch_history()
            path = HERE / "premium_sev1_breach_escalate_resolve.json"
            path.write_text(history.to_json())
            print(f"wrote {path} ({len(history.events)} events)")
        await engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
