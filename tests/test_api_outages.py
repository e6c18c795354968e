"""Outages: a Sev 1 records when its service was down, at intake or with the `outage` action,
and the uptime report counts it (issue 8, DESIGN.md §12)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures_api import Stack, actor_of, assert_nothing_filed, settled_state, wait_until_recorded

SUPPORT = "dev-support"
DOWN = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 1,
    "product": "identity",
    "channel": "on_call",
    "category": "incident",
}


def month_overlap_minutes(start: datetime, end: datetime, month_start: datetime) -> float:
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    overlap = min(end, next_month) - max(start, month_start)
    return max(overlap.total_seconds(), 0) / 60


async def test_an_outage_filed_at_intake_and_ended_later_lowers_the_months_availability(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    started, ended = now - timedelta(minutes=50), now - timedelta(minutes=5)
    filed = await stack.http.post(
        "/tickets", json={**DOWN, "outage_started_at": started.isoformat()}, headers=stack.as_(SUPPORT)
    )
    assert filed.status_code == 201, filed.text
    assert datetime.fromisoformat(filed.json()["outage_started_at"]) == started
    ticket_id = filed.json()["ticket_id"]
    ended_response = await stack.http.post(
        f"/tickets/{ticket_id}/outage",
        json={"started_at": started.isoformat(), "ended_at": ended.isoformat(), "note": "Rolled back"},
        headers=stack.as_(SUPPORT),
    )
    assert ended_response.status_code == 200, ended_response.text
    assert datetime.fromisoformat(ended_response.json()["outage_ended_at"]) == ended
    await wait_until_recorded(stack, ticket_id)

    month_start = ended.replace(day=1, hour=0, minute=0, second=0)
    report = await stack.http.get(
        "/reports/uptime",
        params={"month": f"{month_start:%Y-%m}", "customer": "acme"},
        headers=stack.as_(SUPPORT),
    )
    assert report.status_code == 200, report.text
    (row,) = [r for r in report.json()["items"] if r["product"] == "identity"]
    down = month_overlap_minutes(started, ended, month_start)
    assert row["downtime_minutes"] == pytest.approx(down, abs=0.01)
    month_minutes = month_overlap_minutes(month_start, month_start + timedelta(days=40), month_start)
    assert row["availability_pct"] == pytest.approx(100 * (1 - down / month_minutes), abs=1e-3)
    assert row["target_pct"] == 99.9  # acme is Premium
    timeline = await stack.http.get(f"/tickets/{ticket_id}/timeline", headers=stack.as_(SUPPORT))
    recorded = [e for e in timeline.json()["events"] if e["kind"] == "outage_recorded"]
    assert len(recorded) == 1 and recorded[0]["actor"] == await actor_of(stack, SUPPORT)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (
            {"severity": 2, "channel": "email", "outage_started_at": "2026-11-02T08:00:00Z"},
            "outage_sev1_only",
        ),
        ({"outage_started_at": "2999-01-01T00:00:00Z"}, "outage_window"),
        # No UTC equivalent: it used to wedge the ticket's record (issue 17 §1).
        ({"outage_started_at": "0001-01-01T00:00:00+14:00"}, "outage_window"),
        (
            {"outage_started_at": "2026-11-02T08:00:00Z", "outage_ended_at": "2026-11-02T07:00:00Z"},
            "outage_times",
        ),
        ({"outage_ended_at": "2026-11-02T07:00:00Z"}, "outage_times"),
        ({"outage_started_at": "2026-11-02T08:00:00"}, "invalid_request"),
    ],
)
async def test_bad_outage_times_at_intake_are_refused_and_start_nothing(
    module_stack: Stack, change: dict[str, object], rule: str
) -> None:
    stack = module_stack
    key = uuid.uuid4().hex
    response = await stack.http.post(
        "/tickets", json={**DOWN, **change}, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    assert response.status_code == 422, response.text
    assert response.json()["rule"] == rule
    await assert_nothing_filed(stack, key)


async def test_an_outage_on_a_ticket_that_is_not_sev_1_is_refused_and_changes_nothing(
    module_stack: Stack,
) -> None:
    stack = module_stack
    filed = await stack.http.post(
        "/tickets", json={**DOWN, "severity": 3, "channel": "email"}, headers=stack.as_(SUPPORT)
    )
    ticket_id = filed.json()["ticket_id"]
    before = await settled_state(stack, ticket_id)
    response = await stack.http.post(
        f"/tickets/{ticket_id}/outage",
        json={"started_at": "2026-11-02T08:00:00Z"},
        headers=stack.as_(SUPPORT),
    )
    assert response.status_code == 422, response.text
    assert "Only a Sev 1" in response.json()["detail"]
    backwards = await stack.http.post(
        f"/tickets/{ticket_id}/outage",
        json={"started_at": "2026-11-02T08:00:00Z", "ended_at": "2026-11-01T08:00:00Z"},
        headers=stack.as_(SUPPORT),
    )
    assert backwards.status_code == 422
    assert await settled_state(stack, ticket_id) == before
