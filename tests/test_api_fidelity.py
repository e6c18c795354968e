"""Issue 16 through the API, the console, /metrics and the reports, on the real calendars:
the partner's own agreement (DESIGN.md §6), regional holidays (§3) and indicative clocks (§4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.metrics import count_read_model, exposition
from store.sla_report import ReportGroupBy, sla_report
from tests.fixtures_api import Stack, settled_state
from tests.test_api_permissions import console_as
from tests.test_catalog_api import catalog_rows
from tests.test_console import queue_rows
from worker import cli

ADMIN, SUPPORT = "dev-admin", "dev-support"


def ticket(customer_id: str, severity: int = 2, product: str = "audit") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "title": "Audit export fails",
        "description": "The nightly export stops at 80%",
        "severity": severity,
        "product": product,
        "channel": "email",
        "category": "bug",
    }


async def file(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = await stack.http.post("/tickets", json=body, headers=stack.as_(ADMIN))
    assert response.status_code == 201, response.text
    filed: dict[str, Any] = response.json()
    return filed


async def onboard_partner_customer(stack: Stack, partner: dict[str, Any], customer_id: str) -> None:
    admin = stack.as_(ADMIN)
    created = await stack.http.post("/partners", json=partner, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json() == partner
    contract = {
        "tier": "premium",
        "product_type": "partner_delivered",
        "timezone": "Europe/Amsterdam",
        "country": "NL",
        "partner_id": partner["id"],
    }
    onboarded = await stack.http.post(
        "/customers", json={"id": customer_id, "name": customer_id, "contract": contract}, headers=admin
    )
    assert onboarded.status_code == 201, onboarded.text
    assert onboarded.json()["contract"]["partner_coverage_24x7"] is partner["coverage_24x7"]


# --- DESIGN.md §6 -----------------------------------------------------------------------------


async def test_a_premium_customer_of_a_standard_partner_is_served_on_the_partners_agreement(
    stack: Stack,
) -> None:
    partner = {"id": "fabrikam", "name": "Fabrikam", "connectsoft_tier": "standard", "coverage_24x7": False}
    await onboard_partner_customer(stack, partner, "hooli")
    filed = await file(stack, ticket("hooli", product="partner_solution"))
    terms = filed["terms"]
    assert (terms["partner_tier"], terms["partner_coverage_24x7"]) == ("standard", False)
    assert (terms["max_level"], terms["channels"]) == (2, ["email", "portal", "chat"])
    # The first line's target is the customer's Premium one.
    assert filed["response_target"] == "4 h extended"
    tid = filed["ticket_id"]

    handed = await stack.http.post(
        f"/tickets/{tid}/handoff", json={"category": "platform_bug"}, headers=stack.as_(ADMIN)
    )
    assert handed.status_code == 200, handed.text
    clock = next(c for c in handed.json()["clocks"] if c["kind"] == "handoff_response")
    assert clock["target"] == "1 business day"
    climb = await stack.http.post(
        f"/tickets/{tid}/escalate",
        json={"level": 3, "trigger": "requires_engineering"},
        headers=stack.as_(SUPPORT),
    )
    assert climb.status_code == 422
    assert "Standard partner agreement is entitled to L1-L2" in climb.json()["detail"]

    page = await stack.http.get(f"/console/tickets/{tid}", headers=console_as(SUPPORT))
    agreement = re.search(r'data-testid="partner-agreement">([^<]*)<', page.text)
    assert agreement and "fabrikam: Standard with ConnectSoft, 24/7 option no" in agreement.group(1)


async def test_a_partners_own_24x7_option_puts_connectsofts_handoff_clock_on_24x7(stack: Stack) -> None:
    partner = {"id": "tailspin", "name": "Tailspin", "connectsoft_tier": "premium", "coverage_24x7": True}
    await onboard_partner_customer(stack, partner, "wingtip")
    listed = (await stack.http.get("/partners", headers=stack.as_(ADMIN))).json()
    assert {
        "id": "tailspin",
        "name": "Tailspin",
        "connectsoft_tier": "premium",
        "coverage_24x7": True,
    } in listed
    filed = await file(stack, ticket("wingtip", product="partner_solution"))
    handed = await stack.http.post(
        f"/tickets/{filed['ticket_id']}/handoff", json={"category": "platform_bug"}, headers=stack.as_(ADMIN)
    )
    clock = next(c for c in handed.json()["clocks"] if c["kind"] == "handoff_response")
    assert clock["target"] == "4 h 24x7"
    started = datetime.fromisoformat(clock["started_at"])
    assert datetime.fromisoformat(clock["due_at"]) == started + timedelta(hours=4)


async def test_the_24x7_option_is_premium_only_for_a_partner_too(stack: Stack) -> None:
    before = await catalog_rows(stack)
    refused = await stack.http.post(
        "/partners",
        json={"id": "cheap", "name": "Cheap", "connectsoft_tier": "standard", "coverage_24x7": True},
        headers=stack.as_(ADMIN),
    )
    assert refused.status_code == 422
    assert (refused.json()["rule"], refused.json()["detail"].split(": ")[0]) == (
        "coverage_24x7_premium_only",
        "coverage_24x7",
    )
    assert await catalog_rows(stack) == before


@pytest.mark.usefixtures("cli_database")
def test_escalator_partners_add_takes_the_24x7_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(
            ["partners", "add", "--id", "tailspin", "--name", "T", "--tier", "premium", "--coverage-24x7"]
        )
        == 0
    )
    assert cli.main(["partners", "add", "--id", "fabrikam", "--name", "F", "--tier", "standard"]) == 0
    capsys.readouterr()
    assert cli.main(["partners", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["tailspin"][-1] == "yes" and rows["fabrikam"][-1] == "no"
    assert (
        cli.main(["partners", "add", "--id", "x", "--name", "X", "--tier", "basic", "--coverage-24x7"]) == 2
    )
    assert "coverage_24x7_premium_only" in capsys.readouterr().err


# --- DESIGN.md §3 -----------------------------------------------------------------------------

EASTER_MONDAY_LONDON = {
    "tier": "standard",
    "severity": 2,
    "submitted_at": "2026-04-06T09:00",
    "timezone": "Europe/London",
    "country": "GB",
}


@pytest.mark.parametrize(
    ("extra", "due"),
    [
        ({}, "2026-04-06T16:00:00Z"),  # nationwide: Easter Monday is a working day
        ({"subdivision": "GB-ENG"}, "2026-04-07T16:00:00Z"),  # England: it is a bank holiday
    ],
)
async def test_the_deadline_quote_follows_the_subdivisions_holidays(
    stack: Stack, capsys: pytest.CaptureFixture[str], extra: dict[str, str], due: str
) -> None:
    query = EASTER_MONDAY_LONDON | extra
    response = await stack.http.get("/sla/deadline", params=query)
    assert response.status_code == 200, response.text
    assert response.json()["response_due"] == due
    argv = ["due"] + [
        arg for key, value in query.items() for arg in (f"--{key.replace('_', '-')}", str(value))
    ]
    assert cli.main(argv) == 0
    assert f'"response_due": "{due}"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("subdivision", "rule"), [("GB-XYZ", "unknown_subdivision"), ("US-NY", "subdivision_country")]
)
async def test_the_deadline_quote_refuses_a_subdivision_it_has_no_calendar_for(
    stack: Stack, subdivision: str, rule: str
) -> None:
    response = await stack.http.get(
        "/sla/deadline", params=EASTER_MONDAY_LONDON | {"subdivision": subdivision}
    )
    assert response.status_code == 422
    assert response.json()["rule"] == rule and subdivision in response.json()["detail"]


async def test_the_london_customers_tickets_pin_englands_holidays(stack: Stack) -> None:
    filed = await file(stack, ticket("umbrella", product="bespoke"))
    assert (filed["terms"]["country"], filed["terms"]["subdivision"]) == ("GB", "GB-ENG")
    state = await settled_state(stack, filed["ticket_id"])
    assert "2027-03-29" in state["entitlement"]["holidays"]  # Easter Monday 2027
    page = await stack.http.get(f"/console/tickets/{filed['ticket_id']}", headers=console_as(SUPPORT))
    holidays = re.search(r'data-testid="holidays">([^<]*)<', page.text)
    assert holidays and holidays.group(1) == "Europe/London, public holidays of GB-ENG"
    contract = (await stack.http.get("/customers/umbrella/contract", headers=stack.as_(ADMIN))).json()
    assert contract["subdivision"] == "GB-ENG"
    form = await stack.http.get("/console/file?customer_id=umbrella", headers=console_as(SUPPORT))
    assert "calendar in Europe/London, public holidays of GB-ENG." in form.text
    acme = await stack.http.get("/console/file?customer_id=acme", headers=console_as(SUPPORT))
    assert "calendar in Europe/Berlin, public holidays of DE (nationwide only)." in acme.text


@pytest.mark.parametrize(
    ("contract", "rule"),
    [
        ({"country": "GB", "subdivision": "GB-XYZ"}, "unknown_subdivision"),
        ({"country": "US", "subdivision": "GB-ENG"}, "subdivision_country"),
        ({"country": None, "subdivision": "US-NY"}, "subdivision_country"),
    ],
)
async def test_the_catalog_refuses_an_unknown_subdivision_naming_the_field(
    stack: Stack, contract: dict[str, Any], rule: str
) -> None:
    before = await catalog_rows(stack)
    body = {"tier": "standard", "product_type": "platform", "timezone": "America/New_York"} | contract
    response = await stack.http.put("/customers/globex/contract", json=body, headers=stack.as_(ADMIN))
    assert response.status_code == 422, response.text
    assert (response.json()["rule"], response.json()["detail"].split(": ")[0]) == (rule, "subdivision")
    onboard = await stack.http.post(
        "/customers", json={"id": "hooli", "name": "Hooli", "contract": body}, headers=stack.as_(ADMIN)
    )
    assert (onboard.status_code, onboard.json()["detail"].split(": ")[0]) == (422, "contract.subdivision")
    assert await catalog_rows(stack) == before


# --- DESIGN.md §4 -----------------------------------------------------------------------------


async def test_the_queue_puts_indicative_times_after_every_live_binding_clock(db_stack: Stack) -> None:
    stack = db_stack
    # A binding target far longer than Basic's 3 business days: the indicative time comes
    # first on the clock, yet the binding ticket comes first in the queue.
    slow = {"response": {"4": {"minutes": 400_000, "calendar": "24x7"}}}
    contract = {"tier": "standard", "product_type": "platform", "timezone": "UTC", "overrides": slow}
    onboarded = await stack.http.post(
        "/customers", json={"id": "slowco", "name": "Slowco", "contract": contract}, headers=stack.as_(ADMIN)
    )
    assert onboarded.status_code == 201, onboarded.text
    basic = await file(stack, ticket("initech", severity=4))
    binding = await file(stack, ticket("slowco", severity=4))
    done = await file(stack, ticket("globex", severity=3))
    await stack.http.post(
        f"/tickets/{done['ticket_id']}/resolve", json={"resolution": "Fixed"}, headers=stack.as_(ADMIN)
    )
    for filed in (basic, binding, done):
        await settled_state(stack, filed["ticket_id"])
    assert basic["response_due"] < binding["response_due"]

    page = await stack.http.get("/console?status=all", headers=console_as(SUPPORT))

    rows = queue_rows(page.text)
    assert [ticket_id for ticket_id, _ in rows] == [
        binding["ticket_id"],
        basic["ticket_id"],
        done["ticket_id"],
    ]
    basic_row = re.search(rf'<tr data-ticket="{basic["ticket_id"]}">\s*<td>(.*?)</td>', page.text, re.S)
    assert basic_row is not None
    assert 'data-signal="indicative"' in basic_row.group(1) and 'data-live="0"' in basic_row.group(1)
    assert "Indicative" in basic_row.group(1) and "left" not in basic_row.group(1)
    api = (await stack.http.get(f"/tickets/{basic['ticket_id']}", headers=stack.as_(SUPPORT))).json()
    assert [(c["kind"], c["indicative"], c["status"]) for c in api["clocks"]] == [
        ("first_response", True, "running")
    ]


async def test_metrics_and_reports_never_call_an_indicative_time_breached(stack: Stack) -> None:
    basic = await file(stack, ticket("initech", severity=2))
    await file(stack, ticket("globex", severity=2))
    await settled_state(stack, basic["ticket_id"])
    a_year_on = datetime.now(UTC) + timedelta(days=365)

    async with stack.sessionmaker() as session:
        counts = await count_read_model(session, now=a_year_on)
        now_counts = await count_read_model(session)
        groups = await sla_report(
            session=session,
            start=a_year_on - timedelta(days=400),
            end=a_year_on,
            group_by=ReportGroupBy.TIER,
        )

    assert counts.indicative_past_due == {"basic": 1}
    assert now_counts.indicative_past_due == {}
    assert all(count == 0 for count in counts.breached.values())
    text = exposition(counts).decode()
    assert 'escalator_open_tickets_indicative_past_due{tier="basic"} 1.0' in text
    assert 'escalator_open_tickets_breached{level="1",line="connectsoft",tier="basic"} 0.0' in text
    basic_group = next(g for g in groups if g.key == "basic")
    assert (basic_group.first_response_met, basic_group.first_response_breached) == (0, 0)
    assert basic_group.attainment_pct is None


async def test_get_policy_states_the_three_rulings(stack: Stack) -> None:
    policy = (await stack.http.get("/policy")).json()
    notes = policy["notes"]
    assert "GB-ENG" in notes["public_holidays.subdivision"]
    assert "only nationwide" in notes["public_holidays.subdivision"]
    assert "coverage_24x7" in notes["partner_agreement.connectsoft_owes"]
    assert "customer's contract" in notes["partner_agreement.partner_owes"]
    assert "never warns, breaches or escalates" in notes["indicative_targets"]
