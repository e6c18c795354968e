"""A worker SIGKILLed mid-fan-out (issue 19): two `escalator worker` processes, one API and a dev
server of their own (tests/drill_support.py); the worker running an incident update's fan-out is
killed once it has heartbeated part of a batch. The retried activity resumes on the other worker
from the heartbeat, and every linked ticket ends with the update exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from store.db import TicketEventRecord, make_engine, make_sessionmaker
from tests.drill_support import Proc, ProcessStack, until
from tests.incident_support import an_hour_ago, ticket_body
from workflows.incident import IncidentWorkflow
from workflows.incident_model import IncidentState

TICKETS = 400
BATCH = 100
SUPPORT = {"authorization": "Bearer dev-support"}
ADMIN = {"authorization": "Bearer dev-admin"}


async def file_linked(http: httpx.AsyncClient, count: int, incident_id: str) -> list[str]:
    gate = asyncio.Semaphore(25)

    async def one(i: int) -> str:
        async with gate:
            body = ticket_body(("acme", "globex")[i % 2], severity=2, product="identity")
            response = await http.post("/tickets", json=body, headers=ADMIN)
            assert response.status_code == 201, response.text
            assert response.json()["incident_id"] == incident_id
            ticket_id: str = response.json()["ticket_id"]
            return ticket_id

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def kill_the_fan_out_worker(
    stack: ProcessStack, incident_id: str, workers: list[Proc]
) -> dict[str, Any]:
    """SIGKILL the worker running the fan-out once it has heartbeated some tickets; the
    heartbeat it left (cursor, delivered so far)."""
    handle = (await stack.client()).get_workflow_handle(f"incident-{incident_id}")
    caught: dict[str, Any] = {}

    async def heartbeating() -> bool:
        for pending in (await handle.describe()).raw_description.pending_activities:
            if pending.activity_type.name == "fan_out_incident_update" and pending.heartbeat_details.payloads:
                caught["identity"] = pending.last_worker_identity
                caught["details"] = pending.heartbeat_details
                return True
        return False

    await until(heartbeating, timeout=120, what="the fan-out heartbeats", interval=0.05)
    pid = int(caught["identity"].split("@", 1)[0])
    [doomed] = [worker for worker in workers if worker.pid == pid]
    doomed.send(signal.SIGKILL)
    assert await doomed.wait() == -signal.SIGKILL
    return caught


async def test_a_worker_killed_mid_fan_out_leaves_every_ticket_commented_exactly_once(tmp_path: Path) -> None:
    settings = {"ESCALATOR_INCIDENT_BATCH_SIZE": str(BATCH), "ESCALATOR_INCIDENT_CACHE_SECONDS": "0"}
    async with ProcessStack(tmp_path / "stack", settings=settings) as stack:
        await stack.start_server()
        await stack.prepare_database()
        workers = list(await asyncio.gather(stack.start_worker(), stack.start_worker()))
        await stack.start_api()
        client = await stack.client()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
            opened = await http.post(
                "/incidents",
                json={
                    "title": "Identity outage",
                    "description": "SSO down",
                    "product": "identity",
                    "severity": 2,
                },
                headers=SUPPORT,
            )
            incident_id = opened.json()["incident_id"]
            rule = {"product": "identity", "severities": [2], "received_from": an_hour_ago()}
            assert (
                await http.post(f"/incidents/{incident_id}/links", json=rule, headers=SUPPORT)
            ).status_code == 200
            ticket_ids = await file_linked(http, TICKETS, incident_id)
            engine = make_engine(stack.database_url)
            sessionmaker = make_sessionmaker(engine)

            async def all_linked_in_the_read_model() -> bool:
                async with sessionmaker() as session:
                    rows = await session.scalars(
                        select(TicketEventRecord.ticket_id).where(TicketEventRecord.kind == "incident_linked")
                    )
                    return len(set(rows)) == TICKETS

            await until(all_linked_in_the_read_model, timeout=300, what="the links are recorded")
            posted = await http.post(
                f"/incidents/{incident_id}/updates", json={"message": "Restoring"}, headers=SUPPORT
            )
            update_id = posted.json()["update_id"]
            caught = await kill_the_fan_out_worker(stack, incident_id, workers)

        incident = client.get_workflow_handle_for(IncidentWorkflow.run, f"incident-{incident_id}")
        state: IncidentState = await incident.query(IncidentWorkflow.state)
        async for _ in incident.fetch_history_events(wait_new_event=True):
            state = await incident.query(IncidentWorkflow.state)
            if state.updates[0].done:
                break
        [update] = state.updates
        assert (update.delivered, update.total, update.skipped) == (TICKETS, TICKETS, 0)

        finals = await asyncio.gather(*(stack.handle(ticket_id).query("state") for ticket_id in ticket_ids))
        assert all(final["incident_updates"] == [update_id] for final in finals)
        # The batch the killed worker had begun ran again, on the other worker.
        history = await incident.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        assert max(attempts) >= 2, attempts

        async def all_commented_in_the_read_model() -> bool:
            async with sessionmaker() as session:
                count = len(
                    list(
                        await session.scalars(
                            select(TicketEventRecord.ticket_id).where(TicketEventRecord.kind == "commented")
                        )
                    )
                )
                return count >= TICKETS

        await until(all_commented_in_the_read_model, timeout=300, what="the comments are recorded")
        async with sessionmaker() as session:
            commented = Counter(
                await session.scalars(
                    select(TicketEventRecord.ticket_id).where(TicketEventRecord.kind == "commented")
                )
            )
        await engine.dispose()
    # Killed mid-fan-out, with part of the tickets done; then each ticket got it once.
    assert caught["details"].payloads
    assert commented == dict.fromkeys(ticket_ids, 1)
