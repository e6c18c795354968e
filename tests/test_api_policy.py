"""The SLA policy through the API: the policy document, deadline quotes, intake rules,
pinned contract terms, severity changes and the partner handoff."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

import policies
from store.catalog import update_contract
from tests.fixtures_api import Stack, assert_nothing_filed
from worker.cli import main as escalator
from workflows.policy import POLICY_VERSION
from workflows.terms import ResponseTarget, TargetOverrides

TICKET = {
    "customer_id": "acme",
    "title": "Export slow",
    "description": "Audit export takes 10 minutes",
    "severity": 3,
    "product": "audit",
    "channel": "email",
    "category": "performance",
}

SUPPORT, PARTNER = "dev-support", "dev-partner-northwind"


async def test_policy_document_has_version_targets_ladder_and_rules(stack: Stack) -> None:
    policy = (await stack.http.get("/policy")).json()
    assert policy["version"] == POLICY_VERSION
    # DESIGN.md §8: response_targets[tier][severity] is {minutes, calendar, binding}.
    assert policy["response_targets"]["premium"]["1"] == {"minutes": 60, "calendar": "24x7", "binding": True}
    assert policy["response_targets"]["basic"]["1"]["binding"] is False
    assert "typically 2-3 business days" in policy["best_effort_label"]
    assert policy["max_level"] == {"basic": 2, "standard": 2, "premium": 4}
    assert policy["uptime_targets"]["platform"]["premium"] == 99.9
    assert policy["channels"]["basic"] == ["email", "portal"]
    assert "custom_development" in policy["out_of_scope"]
    assert policy["permissions"]["handoff"]["partner"] == "yes"


async def test_policy_serves_exactly_the_released_document_of_each_version(stack: Stack) -> None:
    for path in policies.paths():
        served = await stack.http.get("/policy", params={"version": path.stem})
        assert served.status_code == 200
        assert served.json() == json.loads(path.read_text())
    missing = await stack.http.get("/policy", params={"version": "1999.1"})
    assert missing.status_code == 404
    assert missing.json()["rule"] == "unknown_policy_version"
    assert "2026.11-2" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("query", "due", "binding"),
    [
        # Premium Sev 3, Friday 16:00 Berlin: 1 business day -> Monday 16:00 (15:00 UTC).
        (
            {
                "tier": "premium",
                "severity": 3,
                "submitted_at": "2026-11-27T16:00",
                "timezone": "Europe/Berlin",
                "country": "DE",
            },
            "2026-11-30T15:00:00Z",
            True,
        ),
        # Standard Sev 1 filed Friday 19:00 New York: 1 h left today, 3 h from Monday 08:00.
        (
            {
                "tier": "standard",
                "severity": 1,
                "submitted_at": "2026-12-04T19:00-05:00",
                "timezone": "America/New_York",
                "country": "US",
            },
            "2026-12-07T16:00:00Z",
            True,
        ),
        # The Premium 24/7 option: Sev 2 counts 4 real hours.
        (
            {
                "tier": "premium",
                "severity": 2,
                "submitted_at": "2026-11-28T22:00",
                "timezone": "UTC",
                "coverage_24x7": "true",
            },
            "2026-11-29T02:00:00Z",
            True,
        ),
        (
            # Basic, Monday 09:00 UTC: 3 business days end at Wednesday's closing instant.
            {"tier": "basic", "severity": 1, "submitted_at": "2026-11-23T09:00", "timezone": "UTC"},
            "2026-11-25T17:00:00Z",
            False,
        ),
    ],
)
async def test_deadline_calculator_and_cli_give_the_same_answer(
    stack: Stack, capsys: pytest.CaptureFixture[str], query: dict[str, Any], due: str, binding: bool
) -> None:
    response = await stack.http.get("/sla/deadline", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["response_due"], body["binding"]) == (due, binding)

    argv = ["due"] + [
        arg
        for key, value in query.items()
        for arg in ([f"--{key.replace('_', '-')}"] + ([] if key == "coverage_24x7" else [str(value)]))
    ]
    assert escalator(argv) == 0
    assert json.loads(capsys.readouterr().out) == body


async def test_a_quote_on_a_customers_contract_uses_its_overrides_like_its_tickets(stack: Stack) -> None:
    """GET /sla/deadline?customer_id= quotes the contract's own terms (issue 15: one deadline
    arithmetic): hooli's Sev 2 is 120 minutes on the extended calendar, not a business day."""
    admin = {"Authorization": "Bearer dev-admin"}
    contract = {
        "tier": "standard",
        "product_type": "platform",
        "timezone": "America/Los_Angeles",
        "country": "US",
        "overrides": {"response": {"2": {"minutes": 120, "calendar": "extended"}}},
    }
    created = await stack.http.post(
        "/customers", json={"id": "hooli", "name": "Hooli", "contract": contract}, headers=admin
    )
    assert created.status_code == 201, created.text
    # Tuesday 19:30 in Los Angeles: 30 minutes of extended hours left, 90 more from 08:00.
    query = {"severity": 2, "submitted_at": "2026-12-01T19:30", "customer_id": "hooli"}
    quote = await stack.http.get("/sla/deadline", params=query, headers=admin)
    assert quote.status_code == 200, quote.text
    assert (quote.json()["response_due"], quote.json()["target_minutes"]) == ("2026-12-02T17:30:00Z", 120)
    # Without the contract, the same moment quotes Standard's default: one business day.
    default = await stack.http.get(
        "/sla/deadline",
        params={"tier": "standard", "severity": 2, "submitted_at": "2026-12-01T19:30"}
        | {"timezone": "America/Los_Angeles", "country": "US"},
    )
    assert default.json()["target_minutes"] == 8 * 60
    no_terms = await stack.http.get("/sla/deadline", params={"severity": 2, "submitted_at": "2026-12-01"})
    assert (no_terms.status_code, no_terms.json()["rule"]) == (422, "quote_terms_missing")


async def test_deadline_with_an_unknown_timezone_is_a_clear_422(stack: Stack) -> None:
    response = await stack.http.get(
        "/sla/deadline",
        params={
            "tier": "premium",
            "severity": 1,
            "submitted_at": "2026-11-27T16:00",
            "timezone": "Mars/Base",
        },
    )
    assert response.status_code == 422
    assert response.json()["rule"] == "unknown_timezone"
    assert "IANA time zone" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "rule", "phrase"),
    [
        ({"customer_id": "initech", "channel": "chat"}, "channel_not_entitled", "use one of: email, portal"),
        ({"channel": "on_call", "severity": 2}, "on_call_sev1_only", "Sev 1 production incidents only"),
        ({"category": "feature_request", "severity": 2}, "category_severity", "Sev 4 at most"),
        ({"category": "question", "severity": 3}, "category_severity", "file it with severity 4"),
        ({"category": "custom_development"}, "out_of_scope", "separate service"),
        ({"category": "integration_development"}, "out_of_scope", "professional services"),
    ],
)
async def test_intake_rules_refuse_with_the_rule_and_start_nothing(
    stack: Stack, change: dict[str, Any], rule: str, phrase: str
) -> None:
    body = {**TICKET, **change}
    key = uuid.uuid4().hex
    response = await stack.http.post(
        "/tickets", json=body, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    assert response.status_code == 422
    assert response.json()["rule"] == rule
    assert phrase in response.json()["detail"]
    await assert_nothing_filed(stack, key)


async def test_a_contract_edit_never_changes_an_open_ticket(stack: Stack) -> None:
    globex = {**TICKET, "customer_id": "globex", "severity": 2}
    before = (await stack.http.post("/tickets", json=globex, headers=stack.as_(SUPPORT))).json()
    assert before["terms"]["contract_revision"] == 1
    assert before["response_target"] == "1 business day"

    faster = ResponseTarget(minutes=120, calendar="extended", label="2 h extended")
    async with stack.sessionmaker() as session:
        edited = await update_contract(
            session=session, customer_id="globex", overrides=TargetOverrides(response={"2": faster})
        )
    assert edited.revision == 2

    still = (await stack.http.get(f"/tickets/{before['ticket_id']}", headers=stack.as_(SUPPORT))).json()
    assert still["terms"]["contract_revision"] == 1
    assert still["response_target"] == "1 business day"
    assert still["response_due"] == before["response_due"]

    after = (await stack.http.post("/tickets", json=globex, headers=stack.as_(SUPPORT))).json()
    assert after["terms"]["contract_revision"] == 2
    assert after["response_target"] == "2 h extended"


async def test_severity_change_recomputes_from_intake(stack: Stack) -> None:
    ticket = (await stack.http.post("/tickets", json=TICKET, headers=stack.as_(SUPPORT))).json()
    raised = await stack.http.post(
        f"/tickets/{ticket['ticket_id']}/change-severity",
        json={"severity": 1, "reason": "now all tenants"},
        headers=stack.as_(SUPPORT),
    )
    assert raised.status_code == 200, raised.text
    body = raised.json()
    assert body["severity"] == 1 and body["level"] == 3
    first = next(c for c in body["clocks"] if c["kind"] == "first_response")
    assert first["started_at"] == ticket["received_at"]
    assert first["target"] == "1 h 24x7"
    same = await stack.http.post(
        f"/tickets/{ticket['ticket_id']}/change-severity",
        json={"severity": 1, "reason": "again"},
        headers=stack.as_(SUPPORT),
    )
    assert same.status_code == 409


async def test_partner_ticket_hands_off_to_connectsoft_and_back(stack: Stack) -> None:
    contoso = {**TICKET, "customer_id": "contoso", "product": "partner_solution", "severity": 2}
    ticket = (await stack.http.post("/tickets", json=contoso, headers=stack.as_(SUPPORT))).json()
    assert (ticket["owning_line"], ticket["partner_id"], ticket["level"]) == ("partner", "northwind", 1)
    tid = ticket["ticket_id"]

    escalate = await stack.http.post(
        f"/tickets/{tid}/escalate",
        json={"level": 2, "trigger": "requires_technical_expertise"},
        headers=stack.as_(PARTNER),
    )
    assert escalate.status_code == 403 and "hand off" in escalate.json()["detail"]

    handed = await stack.http.post(
        f"/tickets/{tid}/handoff", json={"category": "platform_bug"}, headers=stack.as_(PARTNER)
    )
    assert handed.status_code == 200, handed.text
    body = handed.json()
    assert (body["owning_line"], body["level"]) == ("connectsoft", 2)
    handoff_clock = next(c for c in body["clocks"] if c["kind"] == "handoff_response")
    assert handoff_clock["owner"] == "connectsoft" and handoff_clock["status"] == "running"

    back = await stack.http.post(
        f"/tickets/{tid}/handback", json={"note": "patched in 4.2.1"}, headers=stack.as_(SUPPORT)
    )
    assert back.status_code == 200 and back.json()["owning_line"] == "partner"
    resolved = await stack.http.post(
        f"/tickets/{tid}/resolve", json={"resolution": "customer confirmed"}, headers=stack.as_(PARTNER)
    )
    assert resolved.json()["status"] == "resolved"


async def test_closed_ticket_refuses_actions_with_409(stack: Stack) -> None:
    tid = (await stack.http.post("/tickets", json=TICKET, headers=stack.as_(SUPPORT))).json()["ticket_id"]
    closed = await stack.http.post(
        f"/tickets/{tid}/close", json={"note": "duplicate"}, headers=stack.as_(SUPPORT)
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    await stack.handle(tid).result()
    again = await stack.http.post(
        f"/tickets/{tid}/comment", json={"body": "hello?"}, headers=stack.as_(SUPPORT)
    )
    assert again.status_code == 409
    assert "closed" in again.json()["detail"]
    # A closed ticket can still be read.
    assert (await stack.http.get(f"/tickets/{tid}", headers=stack.as_(SUPPORT))).json()["status"] == "closed"


def test_the_cli_prints_the_document_of_a_version(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert escalator(["policy", "show", "2026.11-2"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(
        (policies.DIRECTORY / "2026.11-2.json").read_text()
    )
    assert escalator(["policy", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == POLICY_VERSION
    assert escalator(["policy", "show", "1999.1"]) == 2
    assert "no policy version '1999.1'" in capsys.readouterr().err
