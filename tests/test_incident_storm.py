"""A storm (issue 19): 2,000 tickets linked to one incident by its rule, then one update. Every
ticket's first response is met at the update's time, and each ticket's history shows the update
exactly once. Runs in `make test` on the dev server (minutes: the whole stack in one process)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select

from store.db import TicketClockRecord, TicketEventRecord
from tests.fixtures_api import Stack, settled_state
from tests.incident_support import ADMIN, SUPPORT, an_hour_ago, fanned_out, open_incident, ticket_body

STORM = 2_000
# Requests in flight at once, like a burst of customers.
CONCURRENCY = 50
CUSTOMERS = ("acme", "globex", "initech")


async def file_storm(stack: Stack, count: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> dict[str, Any]:
        async with gate:
            body = ticket_body(CUSTOMERS[i % len(CUSTOMERS)], severity=2, product="identity")
            response = await stack.http.post("/tickets", json=body, headers=stack.as_(ADMIN))
            assert response.status_code == 201, response.text
            filed: dict[str, Any] = response.json()
            return filed

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def test_one_update_reaches_a_storm_of_2000_tickets_linked_by_rule_once_each(stack: Stack) -> None:
    incident = await open_incident(stack, product="identity", title="Identity outage")
    ruled = await stack.http.post(
        f"/incidents/{incident}/links",
        json={"product": "identity", "severities": [1, 2], "received_from": an_hour_ago()},
        headers=stack.as_(SUPPORT),
    )
    assert ruled.status_code == 200, ruled.text

    storm = await file_storm(stack, STORM)
    # Intake linked each one by the rule, from its start.
    assert Counter(ticket["incident_id"] for ticket in storm) == {incident: STORM}
    ids = [ticket["ticket_id"] for ticket in storm]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def settled(ticket_id: str) -> dict[str, Any]:
        async with gate:
            return await settled_state(stack, ticket_id)

    # Every link is in the read model, which the fan-out pages through.
    await asyncio.gather(*(settled(ticket_id) for ticket_id in ids))

    posted = await stack.http.post(
        f"/incidents/{incident}/updates",
        json={"message": "We are restoring sign-in"},
        headers=stack.as_(SUPPORT),
    )
    assert posted.status_code == 202, posted.text
    update_id, posted_at = posted.json()["update_id"], datetime.fromisoformat(posted.json()["at"])
    state = await fanned_out(stack, incident)
    [update] = state["updates"]
    assert (update["delivered"], update["total"], update["skipped"]) == (STORM, STORM, 0)

    finals = await asyncio.gather(*(settled(ticket_id) for ticket_id in ids))
    async with stack.sessionmaker() as session:
        comments = (
            await session.execute(
                select(TicketEventRecord.ticket_id, TicketEventRecord.at).where(
                    TicketEventRecord.ticket_id.in_(ids), TicketEventRecord.kind == "commented"
                )
            )
        ).all()
        clocks = dict(
            (
                await session.execute(
                    select(TicketClockRecord.ticket_id, TicketClockRecord.stopped_at).where(
                        TicketClockRecord.ticket_id.in_(ids),
                        TicketClockRecord.kind == "first_response",
                        TicketClockRecord.status == "met",
                    )
                )
            ).all()
        )
    # Each history shows the update once; each first response is met at the update's time.
    assert Counter(ticket_id for ticket_id, _ in comments) == dict.fromkeys(ids, 1)
    commented_at = dict(comments)
    assert set(clocks) == set(ids)
    assert all(clocks[ticket_id] == commented_at[ticket_id] == posted_at for ticket_id in ids)
    assert all(final["incident_updates"] == [update_id] for final in finals)

    seen = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert (seen["linked"], seen["open"], seen["met"], seen["breached"]) == (STORM, STORM, STORM, 0)
