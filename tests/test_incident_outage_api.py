"""An incident's outage end to end (issue 19, DESIGN.md §12, §13) on the dev server: its workflow
writes its row to the read model when it opens and when it resolves, with the outage times
given or its own, and the uptime report counts that outage for a customer whose linked ticket
recorded none. Bad outage times are refused and change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from store.db import Incident, IncidentProduct
from tests.factories import SUPPORT as SUPPORT_PRINCIPAL
from tests.fixtures_api import Stack, completed_activity, wait_for_event
from tests.incident_support import (
    CUSTOMER,
    SUPPORT,
    file_ticket,
    incident_handle,
    linked_to,
    open_incident,
    ticket_until,
)
from tests.test_incidents_api import incidents_started_since
from workflows.incident_model import ResolveIncident


async def incident_row(stack: Stack, incident_id: str) -> tuple[Incident, set[str]]:
    async with stack.sessionmaker() as session:
        row = await session.get_one(Incident, incident_id)
        products = await session.scalars(
            select(IncidentProduct.product).where(IncidentProduct.incident_id == incident_id)
        )
        return row, set(products)


def whole_seconds(hours_ago: float) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0)


def next_month(value: datetime) -> datetime:
    first = value.replace(day=1, hour=0, minute=0, second=0)
    return (first + timedelta(days=32)).replace(day=1)


async def test_an_incident_lands_in_the_read_model_when_opened_and_resolved_and_counts_in_uptime(
    stack: Stack,
) -> None:
    acme = (await file_ticket(stack, "acme"))["ticket_id"]  # config, Sev 2: no outage of its own
    began, ended = whole_seconds(2), whole_seconds(1)
    incident = await open_incident(stack, also_products=["bot"], outage_started_at=began.isoformat())
    handle = incident_handle(stack, incident)
    await wait_for_event(handle, completed_activity("record_incident"))

    row, products = await incident_row(stack, incident)
    assert (row.status, row.severity, row.title) == ("open", 2, "Config service outage")
    assert (row.outage_started_at, row.outage_ended_at, row.resolved_at) == (began, None, None)
    assert products == {"config", "bot"}

    linked = await stack.http.post(
        f"/incidents/{incident}/links", json={"ticket_ids": [acme]}, headers=stack.as_(SUPPORT)
    )
    assert linked.status_code == 200, linked.text
    await ticket_until(stack, acme, linked_to(incident))
    resolved = await stack.http.post(
        f"/incidents/{incident}/resolve",
        json={"resolution": "Config store failed over", "outage_ended_at": ended.isoformat()},
        headers=stack.as_(SUPPORT),
    )
    assert resolved.status_code == 202, resolved.text
    await handle.result()

    row, _ = await incident_row(stack, incident)
    assert (row.status, row.outage_started_at, row.outage_ended_at) == ("resolved", began, ended)
    assert row.resolved_at is not None and row.resolved_at > ended
    public = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert [datetime.fromisoformat(public[f"outage_{end}"]) for end in ("started_at", "ended_at")] == [
        began,
        ended,
    ]
    # Its outage is acme's, on each of its products, in the month it began (clipped to it).
    down = round((min(ended, next_month(began)) - began).total_seconds() / 60, 2)
    report = await stack.http.get(
        "/reports/uptime", params={"month": f"{began:%Y-%m}"}, headers=stack.as_(CUSTOMER)
    )
    assert report.status_code == 200, report.text
    assert {row["product"]: row["downtime_minutes"] for row in report.json()["items"]} == {
        "config": down,
        "bot": down,
    }


async def test_without_given_times_the_outage_is_from_opening_to_resolution(stack: Stack) -> None:
    incident = await open_incident(stack)
    resolved = await stack.http.post(
        f"/incidents/{incident}/resolve", json={"resolution": "ok"}, headers=stack.as_(SUPPORT)
    )
    assert resolved.status_code == 202, resolved.text
    await incident_handle(stack, incident).result()

    row, products = await incident_row(stack, incident)
    assert (row.status, products) == ("resolved", {"config"})
    assert row.resolved_at is not None
    assert (row.outage_started_at, row.outage_ended_at) == (row.opened_at, row.resolved_at)


def shown(value: datetime) -> str:
    return value.isoformat()


@pytest.mark.parametrize(
    ("outage_started_at", "rule"),
    [
        (shown(whole_seconds(-1)), "outage_window"),  # an hour from now
        (shown(whole_seconds(31 * 24)), "outage_window"),  # more than 30 days back
        (whole_seconds(1).replace(tzinfo=None).isoformat(), "invalid_request"),  # no UTC offset
    ],
    ids=["future", "too-far-back", "naive"],
)
async def test_an_incident_with_bad_outage_start_is_refused_and_nothing_starts(
    stack: Stack, outage_started_at: str, rule: str
) -> None:
    since = datetime.now(UTC)
    response = await stack.http.post(
        "/incidents",
        json={
            "title": "x",
            "description": "x",
            "product": "config",
            "severity": 2,
            "outage_started_at": outage_started_at,
        },
        headers=stack.as_(SUPPORT),
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["rule"] == rule and "outage_started_at" in response.text
    assert await incidents_started_since(stack, since) == 0


async def test_a_resolution_with_bad_outage_end_is_refused_and_the_incident_stays_open(stack: Stack) -> None:
    incident = await open_incident(stack, outage_started_at=shown(whole_seconds(2)))
    bad: list[tuple[str, str]] = [
        (shown(whole_seconds(3)), "outage_times"),  # before it began
        (shown(whole_seconds(-1)), "outage_window"),  # in the future
    ]
    for ended, rule in bad:
        response = await stack.http.post(
            f"/incidents/{incident}/resolve",
            json={"resolution": "ok", "outage_ended_at": ended},
            headers=stack.as_(SUPPORT),
        )
        assert response.status_code == 422, response.text
        assert response.json()["rule"] == rule and "outage_ended_at" in response.json()["detail"]
    # Straight to the workflow, past the API's check: its validator refuses it too.
    handle = incident_handle(stack, incident)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "resolve",
            ResolveIncident(actor=SUPPORT_PRINCIPAL, resolution="ok", outage_ended_at=whole_seconds(3)),
        )
    cause: Any = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.details == ("outage_times",)

    state = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert (state["status"], state["outage_ended_at"], state["updates"]) == ("open", None, [])
    await stack.http.post(
        f"/incidents/{incident}/resolve", json={"resolution": "ok"}, headers=stack.as_(SUPPORT)
    )
    await handle.result()
