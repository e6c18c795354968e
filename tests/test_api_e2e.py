"""The HTTP API through to the workflow and the read model, on the real dev server."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from store.tickets import get_ticket_row
from tests.fixtures_api import (
    Stack,
    assert_nothing_filed,
    history_types,
    record_written,
    recorded_timeline,
    wait_for_event,
    wait_until_quiet,
)
from workflows import search_attributes as sa

LOGIN_DOWN = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 1,
    "product": "identity",
    "channel": "on_call",
    "category": "incident",
}

SUPPORT, PARTNER = "dev-support", "dev-partner-northwind"


async def test_intake_answers_201_with_a_premium_one_hour_response_due(stack: Stack) -> None:
    before = datetime.now().astimezone()
    response = await stack.http.post("/tickets", json=LOGIN_DOWN, headers=stack.as_(SUPPORT))
    assert response.status_code == 201, response.text
    body = response.json()
    ticket_id = body["ticket_id"]
    assert body["workflow_id"] == f"ticket-{ticket_id}"
    assert (body["tier"], body["level"], body["severity"]) == ("premium", 3, 1)
    received = datetime.fromisoformat(body["received_at"])
    assert before - timedelta(seconds=1) <= received
    assert datetime.fromisoformat(body["response_due"]) == received + timedelta(hours=1)
    assert body["summary"] == "[Sev 1][Premium] acme / identity: Login down"

    # Live state from the workflow query.
    live = (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_(SUPPORT))).json()
    assert live["status"] == "open" and live["owning_line"] == "connectsoft"
    first = next(c for c in live["clocks"] if c["kind"] == "first_response")
    assert (first["target"], first["calendar"], first["status"]) == ("1 h 24x7", "24x7", "running")
    assert first["due_at"] == body["response_due"] or datetime.fromisoformat(
        first["due_at"]
    ) == datetime.fromisoformat(body["response_due"])

    # Through to the read model, and back out of the list and timeline endpoints.
    handle = stack.handle(ticket_id)
    await wait_for_event(handle, record_written())
    async with stack.sessionmaker() as session:
        row = await get_ticket_row(session=session, ticket_id=ticket_id)
    assert row is not None and row.level == 3 and row.tier == "premium"
    listed = (
        await stack.http.get("/tickets", params={"customer_id": "acme"}, headers=stack.as_(SUPPORT))
    ).json()
    assert ticket_id in [item["ticket_id"] for item in listed["items"]]
    timeline = (await stack.http.get(f"/tickets/{ticket_id}/timeline", headers=stack.as_(SUPPORT))).json()
    assert [e["kind"] for e in timeline["events"]][:2] == ["opened", "critical_incident"]

    # The Temporal UI story: static summary (no customer text: it stays readable in an
    # encrypted history) and search attributes.
    description = await handle.describe()
    assert await description.static_summary() == "[Sev 1][Premium] acme / identity"
    assert await description.static_details() is None
    attrs = description.typed_search_attributes
    assert attrs.get(sa.CUSTOMER_ID) == "acme"
    assert attrs.get(sa.ESCALATION_LEVEL) == 3
    assert attrs.get(sa.SUPPORT_TIER) == "premium"


async def test_timer_and_activities_carry_summaries(stack: Stack) -> None:
    filed = (await stack.http.post("/tickets", json=LOGIN_DOWN, headers=stack.as_(SUPPORT))).json()
    handle = stack.handle(filed["ticket_id"])
    timer = await wait_for_event(handle, lambda e: e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    converter = stack.client.data_converter.payload_converter
    timer_summary = converter.from_payload(timer.user_metadata.summary, str)
    due = datetime.fromisoformat(filed["response_due"])
    assert timer_summary.startswith(f"Sev 1 first response due {due:%Y-%m-%d %H:%M} UTC (1 h 24x7)")
    assert "75% warning at" in timer_summary
    history = await handle.fetch_history()
    activity_summaries = [
        converter.from_payload(e.user_metadata.summary, str)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    # One step per flush (issue 18): a single activity sends the intake's notices and writes its
    # events with their deliveries, and its summary says what it records and whom it tells.
    assert len(activity_summaries) == 1
    (step,) = activity_summaries
    assert step.startswith("record opened, critical_incident; notify ")
    told = step.split("; notify ", 1)[1].split(", ")
    assert sorted(told) == ["customer", "engineering_l3", "leadership_l4", "page on_call", "support_l1"]


async def upserted_search_attributes(handle: Any) -> list[list[str]]:
    history = await handle.fetch_history()
    return [
        sorted(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]


async def test_the_workflow_publishes_only_the_search_attributes_that_change(stack: Stack) -> None:
    """Intake starts the workflow with its search attributes; the workflow does not set them again."""
    filed = {**LOGIN_DOWN, "severity": 3, "channel": "email"}
    ticket_id = (await stack.http.post("/tickets", json=filed, headers=stack.as_(SUPPORT))).json()[
        "ticket_id"
    ]
    handle = stack.handle(ticket_id)
    await wait_until_quiet(handle)
    # Only the SDK's own TemporalChangeVersion, once per patch a new ticket takes
    # (`deliver-notifications`, `record-whatif-inputs`).
    upserted = await upserted_search_attributes(handle)
    assert upserted and all(keys == ["TemporalChangeVersion"] for keys in upserted), upserted

    escalated = await stack.http.post(
        f"/tickets/{ticket_id}/escalate",
        json={"level": 3, "trigger": "critical_bug_or_platform_issue"},
        headers=stack.as_(SUPPORT),
    )
    assert escalated.status_code == 200, escalated.text
    await wait_for_event(
        handle,
        lambda e: (
            e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
            and "EscalationLevel"
            in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        ),
    )
    assert (await handle.describe()).typed_search_attributes.get(sa.ESCALATION_LEVEL) == 3


async def test_acknowledge_escalate_and_resolve_are_validated_updates(stack: Stack) -> None:
    ticket_id = (
        await stack.http.post(
            "/tickets", json={**LOGIN_DOWN, "severity": 3, "channel": "email"}, headers=stack.as_(SUPPORT)
        )
    ).json()["ticket_id"]
    acked = await stack.http.post(f"/tickets/{ticket_id}/acknowledge", json={}, headers=stack.as_(SUPPORT))
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    again = await stack.http.post(f"/tickets/{ticket_id}/acknowledge", json={}, headers=stack.as_(SUPPORT))
    assert again.status_code == 409
    assert "already acknowledged" in again.json()["detail"]

    escalated = await stack.http.post(
        f"/tickets/{ticket_id}/escalate",
        json={"level": 3, "trigger": "critical_bug_or_platform_issue"},
        headers=stack.as_(SUPPORT),
    )
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["level"] == 3

    resolved = await stack.http.post(
        f"/tickets/{ticket_id}/resolve", json={"resolution": "patched"}, headers=stack.as_(SUPPORT)
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert all(c["status"] != "running" for c in resolved.json()["clocks"])


async def test_invalid_escalation_answers_422_and_leaves_no_trace_in_history(stack: Stack) -> None:
    globex = {**LOGIN_DOWN, "customer_id": "globex", "severity": 3, "channel": "email"}
    ticket_id = (await stack.http.post("/tickets", json=globex, headers=stack.as_(SUPPORT))).json()[
        "ticket_id"
    ]
    handle = stack.handle(ticket_id)
    # Once the deadline timer runs and its notices are out, the workflow is idle until
    # something happens to it.
    await wait_until_quiet(handle)
    before = await history_types(handle)

    refused = await stack.http.post(
        f"/tickets/{ticket_id}/escalate",
        json={"level": 3, "trigger": "requires_engineering"},
        headers=stack.as_(SUPPORT),
    )
    assert refused.status_code == 422
    assert "Standard contract is entitled to L1-L2" in refused.json()["detail"]
    wrong_trigger = await stack.http.post(
        f"/tickets/{ticket_id}/escalate",
        json={"level": 2, "trigger": "strategic_issue"},
        headers=stack.as_(SUPPORT),
    )
    assert wrong_trigger.status_code == 422
    assert "Level 4 trigger" in wrong_trigger.json()["detail"]

    # Prove the workflow processed nothing: a query still answers from unchanged state and
    # the history has no update, signal or new task.
    state = (await stack.http.get(f"/tickets/{ticket_id}", headers=stack.as_(SUPPORT))).json()
    assert state["level"] == 1
    after = await history_types(handle)
    assert after == before
    assert not any("UPDATE" in t for t in after)


async def test_unknown_ticket_answers_404(stack: Stack) -> None:
    assert (await stack.http.get("/tickets/doesnotexist", headers=stack.as_(SUPPORT))).status_code == 404
    acked = await stack.http.post("/tickets/doesnotexist/acknowledge", json={}, headers=stack.as_(SUPPORT))
    assert acked.status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "phrase"),
    [
        ({"customer_id": "nobody"}, None, "Unknown customer 'nobody'"),
        ({"severity": 7}, "severity", "severity: Input should be 1, 2, 3 or 4"),
        ({"severity": "urgent"}, "severity", "severity:"),
        ({"title": None}, "title", "title: is required"),
        ({"channel": None}, "channel", "channel: is required"),
    ],
)
async def test_bad_intake_answers_422_with_a_clear_message_and_starts_nothing(
    stack: Stack, change: dict[str, Any], field: str | None, phrase: str
) -> None:
    body = {k: v for k, v in {**LOGIN_DOWN, **change}.items() if v is not None}
    key = uuid.uuid4().hex
    response = await stack.http.post(
        "/tickets", json=body, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    assert response.status_code == 422
    problem = response.json()
    assert phrase in problem["detail"]
    if field:
        assert field in [e["field"] for e in problem["errors"]]
    await assert_nothing_filed(stack, key)


async def test_retried_intake_with_the_same_idempotency_key_files_one_ticket(stack: Stack) -> None:
    headers = {"Idempotency-Key": f"mail-{uuid.uuid4().hex}"}
    first = await stack.http.post("/tickets", json=LOGIN_DOWN, headers={**stack.as_(SUPPORT), **headers})
    second = await stack.http.post("/tickets", json=LOGIN_DOWN, headers={**stack.as_(SUPPORT), **headers})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["ticket_id"] == second.json()["ticket_id"]
    assert first.json()["response_due"] == second.json()["response_due"]


async def test_visibility_query_by_customer_finds_the_ticket(stack: Stack) -> None:
    """What `temporal workflow list --query "CustomerId='acme'"` shows an engineer."""
    ticket_id = (await stack.http.post("/tickets", json=LOGIN_DOWN, headers=stack.as_(SUPPORT))).json()[
        "ticket_id"
    ]
    handle = stack.handle(ticket_id)
    await wait_for_event(handle, lambda e: e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    query = f"CustomerId='acme' AND EscalationLevel=3 AND WorkflowId='ticket-{ticket_id}'"
    found = [w.id async for w in stack.client.list_workflows(query)]
    assert found == [f"ticket-{ticket_id}"]


async def test_a_retried_action_with_an_idempotency_key_applies_once(stack: Stack) -> None:
    ticket_id = (
        await stack.http.post(
            "/tickets", json={**LOGIN_DOWN, "severity": 3, "channel": "email"}, headers=stack.as_(SUPPORT)
        )
    ).json()["ticket_id"]
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    comment = {"body": "Looking at the SSO logs now"}
    first = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json=comment, headers={**stack.as_(SUPPORT), **headers}
    )
    retry = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json=comment, headers={**stack.as_(SUPPORT), **headers}
    )
    assert first.status_code == retry.status_code == 200
    timeline = await recorded_timeline(stack, ticket_id)
    assert [e.kind for e in timeline].count("commented") == 1


async def test_healthz_answers_when_database_and_temporal_answer(stack: Stack) -> None:
    response = await stack.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "namespace": stack.client.namespace}
