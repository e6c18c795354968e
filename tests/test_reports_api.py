"""GET /reports/sla, /reports/sla/chart and /reports/uptime over HTTP, behind the demo keys, on
SQLite and PostgreSQL: the figures worked out by hand in test_reports.py, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from api.report_schemas import prefers_csv
from store.sla_report import ReportGroupBy, SlaGroup
from store.uptime_report import UptimeRow
from tests.fixtures_api import Stack
from tests.test_reports import (
    EXPECTED_SCOPED_TIER,
    EXPECTED_SLA,
    EXPECTED_UPTIME_MARCH,
    seed_reports,
)

ADMIN, SUPPORT, PARTNER, CUSTOMER = "dev-admin", "dev-support", "dev-partner-northwind", "dev-customer-acme"
MARCH = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
SVG = "{http://www.w3.org/2000/svg}"


def sla_json(groups: list[SlaGroup]) -> dict[str, Any]:
    return {"groups": [group.model_dump(mode="json") for group in groups]}


def sla_csv_rows(groups: list[SlaGroup]) -> list[dict[str, str]]:
    """The CSV cells the groups must come back as: empty for none, escalations flattened."""
    rows = []
    for group in groups:
        cells = group.model_dump(mode="json", exclude={"escalations"})
        row = {name: "" if value is None else str(value) for name, value in cells.items()}
        row |= {f"escalations_l{level}": str(n) for level, n in group.escalations.items()}
        rows.append(row)
    return rows


def uptime_csv_rows(items: list[UptimeRow]) -> list[dict[str, str]]:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    return [
        {"month": "2026-03", **{k: cell(v) for k, v in row.model_dump(mode="json").items()}} for row in items
    ]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def get(stack: Stack, path: str, key: str, accept: str | None = None, **params: str) -> Any:
    headers = stack.as_(key)
    if accept:
        headers["Accept"] = accept
    return await stack.http.get(path, params=params, headers=headers)


@pytest.mark.parametrize("group_by", [ReportGroupBy.TIER, ReportGroupBy.LINE])
async def test_sla_report_answers_the_same_figures_as_json_and_csv(
    db_stack: Stack, group_by: ReportGroupBy
) -> None:
    await seed_reports(db_stack.sessionmaker)
    expected = EXPECTED_SLA[group_by]

    as_json = await get(db_stack, "/reports/sla", ADMIN, **MARCH, group_by=group_by.value)
    as_csv = await get(db_stack, "/reports/sla", ADMIN, "text/csv", **MARCH, group_by=group_by.value)

    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == sla_json(expected)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == (
        "key,tickets,first_response_met,first_response_breached,attainment_pct,mtta_p50_minutes,"
        "mtta_p90_minutes,mttr_mean_minutes,escalations_l2,escalations_l3,escalations_l4"
    )
    assert read_csv(as_csv.text) == sla_csv_rows(expected)


async def test_reports_are_scoped_like_the_ticket_list(db_stack: Stack) -> None:
    await seed_reports(db_stack.sessionmaker)

    async def tiers(key: str) -> Any:
        response = await get(db_stack, "/reports/sla", key, **MARCH, group_by="tier")
        assert response.status_code == 200, response.text
        return response.json()

    async def uptime(key: str, **params: str) -> Any:
        response = await get(db_stack, "/reports/uptime", key, month="2026-03", **params)
        assert response.status_code == 200, response.text
        return response.json()

    assert await tiers(SUPPORT) == sla_json(EXPECTED_SLA[ReportGroupBy.TIER])
    assert await tiers(PARTNER) == sla_json(EXPECTED_SCOPED_TIER["partner"])
    assert await tiers(CUSTOMER) == sla_json(EXPECTED_SCOPED_TIER["customer"])
    # contoso is northwind's customer; acme sees only its own two products.
    assert [row["customer_id"] for row in (await uptime(PARTNER))["items"]] == ["contoso"]
    assert [row["customer_id"] for row in (await uptime(CUSTOMER))["items"]] == ["acme", "acme"]
    # Another customer's uptime is outside the key's reach: nothing, as in the ticket list.
    assert await uptime(CUSTOMER, customer="globex") == {"month": "2026-03", "items": []}
    assert await uptime(PARTNER, customer="acme") == {"month": "2026-03", "items": []}


async def test_uptime_report_answers_the_same_figures_as_json_and_csv(db_stack: Stack) -> None:
    await seed_reports(db_stack.sessionmaker)

    as_json = await get(db_stack, "/reports/uptime", ADMIN, month="2026-03")
    as_csv = await get(db_stack, "/reports/uptime", ADMIN, "text/csv", month="2026-03")
    acme = await get(db_stack, "/reports/uptime", SUPPORT, month="2026-03", customer="acme")

    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {
        "month": "2026-03",
        "items": [row.model_dump(mode="json") for row in EXPECTED_UPTIME_MARCH],
    }
    assert read_csv(as_csv.text) == uptime_csv_rows(EXPECTED_UPTIME_MARCH)
    assert [(r["customer_id"], r["product"]) for r in acme.json()["items"]] == [
        ("acme", "audit"),
        ("acme", "identity"),
    ]


async def test_sla_chart_is_an_svg_with_attainment_and_breaches_by_line(db_stack: Stack) -> None:
    await seed_reports(db_stack.sessionmaker)

    response = await get(db_stack, "/reports/sla/chart", ADMIN, **MARCH)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{SVG}svg"
    ids = {element.get("id") for element in root.iter() if element.get("id")}
    assert "attainment" in ids
    # Six weeks touch March 2026 (from Monday February 23): one bar per week for each line.
    for line in ("partner", "connectsoft"):
        assert {f"breaches-{line}-{week}" for week in range(6)} <= ids
        assert f"breaches-{line}-6" not in ids
    # The attainment line has a point per week that has an ended clock (80, 40 and 100 %).
    attainment = next(e for e in root.iter() if e.get("id") == "attainment")
    path = next(e for e in attainment.iter() if e.tag == f"{SVG}path")
    assert path.get("d", "").count("L") == 2


async def test_a_partner_chart_shows_only_its_breaches(db_stack: Stack) -> None:
    await seed_reports(db_stack.sessionmaker)

    partner = await get(db_stack, "/reports/sla/chart", PARTNER, **MARCH)
    customer = await get(db_stack, "/reports/sla/chart", CUSTOMER, **MARCH)

    # Bars of zero height are drawn as empty paths; a breach has a height. Northwind's only
    # breaches are H's partner FR and I's HO, in the week of March 9 (index 2).
    def drawn(svg: bytes) -> set[str]:
        root = ET.fromstring(svg)
        found = set()
        for element in root.iter():
            gid = element.get("id") or ""
            if gid.startswith("breaches-"):
                path = next((e for e in element.iter() if e.tag == f"{SVG}path"), None)
                if path is not None and _height(path.get("d", "")) > 0:
                    found.add(gid)
        return found

    assert drawn(partner.content) == {"breaches-partner-2", "breaches-connectsoft-2"}
    # acme: B, in the week of March 2 (index 1).
    assert drawn(customer.content) == {"breaches-connectsoft-1"}


def _height(d: str) -> float:
    """The vertical extent of an SVG path's points."""
    numbers = [float(token) for token in d.replace("M", " ").replace("L", " ").replace("z", " ").split()]
    ys = numbers[1::2]
    return max(ys) - min(ys) if ys else 0.0


# --- Refusals: every 4xx a problem with a rule ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "rule"),
    [
        ("/reports/sla", {"from": "2026-04-01", "to": "2026-03-01"}, "report_period_order"),
        ("/reports/sla", {"from": "2026-03-01", "to": "2026-03-01"}, "report_period_order"),
        ("/reports/sla", {"from": "2025-01-01", "to": "2026-03-01"}, "report_period_too_long"),
        ("/reports/sla/chart", {"from": "2025-01-01", "to": "2026-03-01"}, "report_period_too_long"),
        ("/reports/sla/chart", {"from": "9999-12-01", "to": "9999-12-31"}, "report_period_years"),
        ("/reports/sla", {"from": "0001-01-01T00:00:00+01:00", "to": "2026-03-01"}, "report_period_years"),
        ("/reports/sla", {"from": "2026-03-01", "to": "2026-04-01", "group_by": "region"}, "invalid_request"),
        ("/reports/sla", {"from": "yesterday", "to": "2026-04-01"}, "invalid_request"),
        ("/reports/sla", {"to": "2026-04-01"}, "invalid_request"),
        ("/reports/uptime", {"month": "2026-13"}, "report_month"),
        ("/reports/uptime", {"month": "March"}, "report_month"),
        ("/reports/uptime", {}, "invalid_request"),
        ("/reports/uptime", {"month": "2026-03", "customer": "Acme\x00"}, "invalid_request"),
    ],
)
async def test_bad_report_requests_are_422_problems_with_a_rule(
    module_stack: Stack, path: str, params: dict[str, str], rule: str
) -> None:
    response = await module_stack.http.get(path, params=params, headers=module_stack.as_(ADMIN))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == rule
    assert response.json()["status"] == 422


@pytest.mark.parametrize("path", ["/reports/sla", "/reports/sla/chart", "/reports/uptime"])
async def test_reports_need_an_api_key(module_stack: Stack, path: str) -> None:
    response = await module_stack.http.get(path, params={**MARCH, "month": "2026-03"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == "unauthenticated"


@pytest.mark.parametrize(
    ("accept", "csv_expected"),
    [
        (None, False),
        ("application/json", False),
        ("*/*", False),
        ("text/csv", True),
        ("text/csv, */*;q=0.5", True),
        ("text/csv, */*", True),
        ("application/json, text/csv", False),
        ("application/json;q=0.5, text/csv", True),
        ("text/csv;q=0", False),
    ],
)
def test_csv_only_when_accept_prefers_it(accept: str | None, csv_expected: bool) -> None:
    assert prefers_csv(accept) is csv_expected
