"""Acknowledging a major incident's page (issue 19, DESIGN.md §8, §13).

An incident pages on-call once (`dedup_key` = the incident id): its first linked ticket that
pages triggers it. Support acknowledges it with `POST /incidents/{id}/acknowledge` (and the
console's button): the incident's workflow takes the `acknowledge-page` update and sends the
acknowledge from its `settle_incident_page` activity, once. Against a real pager receiver
(tests/receivers.py), on the dev server, with the whole stack in process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.fixtures_api import Stack, actor_of, sqlite_stack
from tests.incident_support import (
    ADMIN,
    SUPPORT,
    incident_handle,
    incident_until,
    open_incident,
    page_the_incident,
    requests_taken,
)
from tests.receivers import HttpReceiver, ReceivedRequest, SmtpReceiver
from tests.test_api_permissions import console_as, console_form
from tests.test_notifications import sinks
from workflows.incident import PAGE_ACKNOWLEDGE_PATCH


def page_events(requests: list[ReceivedRequest]) -> list[tuple[str, str]]:
    return [(r.body["event_action"], r.body["dedup_key"]) for r in requests if r.path == "/pager"]


async def incident_history(stack: Stack, incident_id: str) -> tuple[list[str], list[str], set[str]]:
    """The updates the incident accepted, the activities it ran, and its patch markers."""
    history = await incident_handle(stack, incident_id).fetch_history()
    updates, activities, markers = [], [], set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            updates.append(
                event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                markers.add(json.loads(details["patch-data"].payloads[0].data)["id"])
    return updates, activities, markers


async def acknowledge(stack: Stack, incident_id: str, who: str) -> Any:
    return await stack.http.post(f"/incidents/{incident_id}/acknowledge", headers=stack.as_(who))


async def test_acknowledging_the_incident_sends_one_acknowledge_on_its_dedup_key_and_not_after_resolve(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    async with sqlite_stack(dev_env, tmp_path / "api.db", **sinks(smtp_receiver, http_receiver)) as stack:
        incident = await open_incident(stack, title="Identity outage", product="identity", severity=1)

        # No linked ticket has paged: nothing to acknowledge, and nothing reaches the workflow.
        taken = await requests_taken(stack, incident)
        early = await acknowledge(stack, incident, SUPPORT)
        assert early.status_code == 409, early.text
        assert early.json()["rule"] == "no_incident_page"
        assert early.headers["content-type"].startswith("application/problem+json")
        assert await requests_taken(stack, incident) == taken
        assert (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()[
            "page"
        ] is None

        await page_the_incident(stack, incident, product="identity")
        await http_receiver.wait_for(1, path="/pager")
        assert page_events(http_receiver.requests) == [("trigger", incident)]

        first = await acknowledge(stack, incident, SUPPORT)
        assert first.status_code == 202, first.text
        assert first.json()["acknowledged_by"] == await actor_of(stack, SUPPORT)
        # Sent, and its page marked, once the incident's activity has completed.
        await incident_until(stack, incident, lambda state: state["page_acknowledge_sent"])

        # A second acknowledge, by another key: answered, nothing more sent or taken.
        taken = await requests_taken(stack, incident)
        again = await acknowledge(stack, incident, ADMIN)
        assert again.status_code == 200, again.text
        assert again.json()["acknowledged_by"] == first.json()["acknowledged_by"]
        assert await requests_taken(stack, incident) == taken
        shown = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()["page"]
        assert (
            shown["status"] == "acknowledge" and shown["acknowledged_by"] == first.json()["acknowledged_by"]
        )

        resolved = await stack.http.post(
            f"/incidents/{incident}/resolve",
            json={"resolution": "IdP failed over"},
            headers=stack.as_(SUPPORT),
        )
        assert resolved.status_code == 202, resolved.text
        await incident_handle(stack, incident).result()
        late = await acknowledge(stack, incident, SUPPORT)
        assert late.status_code == 409, late.text
        assert late.json()["rule"] == "incident_resolved"
        updates, activities, markers = await incident_history(stack, incident)

    # Exactly one acknowledge, on the incident's dedup key, between the trigger and the resolve:
    # every request the pager got, not only those it kept.
    assert page_events(http_receiver.requests) == [
        ("trigger", incident),
        ("acknowledge", incident),
        ("resolve", incident),
    ]
    ack = next(
        r for r in http_receiver.requests if r.path == "/pager" and r.body["event_action"] == "acknowledge"
    )
    assert ack.idempotency_key == f"incident-{incident}/page1-acknowledge"
    # Recorded in the incident's own history: one update, then the activity that sent it.
    assert updates.count("acknowledge-page") == 1
    assert activities.count("settle_incident_page") == 2  # acknowledge, then resolve
    assert PAGE_ACKNOWLEDGE_PATCH in markers


async def test_the_console_acknowledges_the_page_through_the_same_service(
    dev_env: WorkflowEnvironment, tmp_path: Path, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    async with sqlite_stack(dev_env, tmp_path / "api.db", **sinks(smtp_receiver, http_receiver)) as stack:
        incident = await open_incident(stack, product="identity", severity=1)
        page = await stack.http.get(f"/console/incidents/{incident}", headers=console_as(SUPPORT))
        assert 'data-testid="acknowledge-form"' not in page.text  # no page yet

        await page_the_incident(stack, incident, product="identity")
        page = await stack.http.get(f"/console/incidents/{incident}", headers=console_as(SUPPORT))
        assert 'data-testid="acknowledge-form"' in page.text and "not acknowledged" in page.text

        done = await stack.http.post(
            f"/console/incidents/{incident}/acknowledge",
            data=console_form(SUPPORT, {}),
            headers=console_as(SUPPORT),
        )
        assert done.status_code == 303 and done.headers["location"].endswith("?done=acknowledge")
        await incident_until(stack, incident, lambda state: state["page_acknowledge_sent"])
        page = await stack.http.get(done.headers["location"], headers=console_as(SUPPORT))
        assert "Page acknowledged" in page.text and 'data-testid="acknowledge-form"' not in page.text
        assert f"Acknowledged by {await actor_of(stack, SUPPORT)}" in page.text

        await stack.http.post(
            f"/incidents/{incident}/resolve", json={"resolution": "over"}, headers=stack.as_(SUPPORT)
        )
        await incident_handle(stack, incident).result()
        refused = await stack.http.post(
            f"/console/incidents/{incident}/acknowledge",
            data=console_form(SUPPORT, {}),
            headers=console_as(SUPPORT),
        )
        assert refused.status_code == 409 and "Refused (409):" in refused.text
    assert page_events(http_receiver.requests) == [
        ("trigger", incident),
        ("acknowledge", incident),
        ("resolve", incident),
    ]
