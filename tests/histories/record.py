"""Record the committed replay histories: `.venv/bin/python -m tests.histories.record`.

Runs full ticket lives on the time-skipping server with the real worker and activities
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
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db import make_engine, make_sessionmaker, migrate
from activities.notifications import Notifier
from activities.read_model import TicketReadModel
from tests.factories import SUPPORT, engineer, opened_ticket, partner
from workflows import search_attributes
from workflows.models import (
    Acknowledge,
    Channel,
    Close,
    Comment,
    Handback,
    Handoff,
    HandoffCategory,
    Resolve,
    TicketOpened,
    TicketState,
    workflow_id_for,
)
from workflows.ticket import TicketWorkflow

HERE = Path(__file__).parent
CTO = engineer(4, "cto")


async def start(
    env: WorkflowEnvironment, opened: TicketOpened
) -> WorkflowHandle[TicketWorkflow, TicketState]:
    return await env.client.start_workflow(
        TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue="tickets"
    )


async def premium_sev1_breach_escalate_resolve(
    env: WorkflowEnvironment,
) -> WorkflowHandle[TicketWorkflow, TicketState]:
    received = (await env.get_current_time()).replace(microsecond=0)
    opened = opened_ticket("acme", 1, received, channel=Channel.ON_CALL)
    opened.ticket_id = "replay0001"
    handle = await start(env, opened)
    # L3 misses the hour: one breach (first response and L3's acknowledgement together), the
    # climb to L4, then L4 acknowledges and a resolution follows.
    await env.sleep(timedelta(hours=1, minutes=5))
    await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=CTO))
    await handle.execute_update(TicketWorkflow.comment, Comment(actor=CTO, body="Rolled back"))
    await env.sleep(timedelta(hours=2))  # an overdue customer update fires meanwhile
    await handle.execute_update(TicketWorkflow.resolve, Resolve(actor=SUPPORT, resolution="fixed"))
    await handle.execute_update(TicketWorkflow.close, Close(actor=SUPPORT))
    await handle.result()
    return handle


async def partner_sev1_breach_handoff_handback(
    env: WorkflowEnvironment,
) -> WorkflowHandle[TicketWorkflow, TicketState]:
    received = (await env.get_current_time()).replace(microsecond=0)
    opened = opened_ticket("contoso", 1, received)
    opened.ticket_id = "replay0002"
    handle = await start(env, opened)
    # The partner's first line misses its hour (its breach, not ConnectSoft's), answers late,
    # hands off; ConnectSoft answers in time, notes internally and hands back; the partner
    # resolves with its customer.
    northwind = partner("northwind")
    await env.sleep(timedelta(hours=1, minutes=5))
    await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=northwind))
    await handle.execute_update(
        TicketWorkflow.handoff, Handoff(actor=northwind, category=HandoffCategory.SECURITY_ISSUE)
    )
    await env.sleep(timedelta(minutes=30))
    await handle.execute_update(TicketWorkflow.acknowledge, Acknowledge(actor=SUPPORT))
    await handle.execute_update(
        TicketWorkflow.comment, Comment(actor=SUPPORT, body="Token leak in the SSO bridge", public=False)
    )
    await handle.execute_update(TicketWorkflow.handback, Handback(actor=SUPPORT, note="patched in 4.2.1"))
    await handle.execute_update(TicketWorkflow.resolve, Resolve(actor=northwind, resolution="upgraded"))
    await handle.execute_update(TicketWorkflow.close, Close(actor=northwind))
    await handle.result()
    return handle


LIVES = {
    "premium_sev1_breach_escalate_resolve": premium_sev1_breach_escalate_resolve,
    "partner_sev1_breach_handoff_handback": partner_sev1_breach_handoff_handback,
}


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
            for name, life in LIVES.items():
                handle = await life(env)
                history = await handle.fetch_history()
                path = HERE / f"{name}.json"
                path.write_text(history.to_json())
                print(f"wrote {path} ({len(history.events)} events)")
        await engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
