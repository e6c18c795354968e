"""The catalog over HTTP, for real customers: onboard, file, edit the contract, deactivate.

Every bad input is a 422 (409 for a taken id) that names the field and the rule, and writes
nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.fixtures_api import Stack
from worker import cli

HOOLI_CONTRACT: dict[str, Any] = {
    "tier": "standard",
    "product_type": "platform",
    "timezone": "America/Los_Angeles",
    "country": "US",
}
HOOLI = {"id": "hooli", "name": "Hooli", "contract": HOOLI_CONTRACT}


def ticket_for(customer_id: str, severity: int = 2) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "title": "Audit export fails",
        "description": "The nightly export stops at 80%",
        "severity": severity,
        "product": "audit",
        "channel": "email",
        "category": "bug",
    }


async def catalog_rows(stack: Stack) -> list[tuple[Any, ...]]:
    async with stack.sessionmaker() as session:
        rows: list[tuple[Any, ...]] = []
        for table in ("customers", "partners", "contracts"):
            rows += [(table, *row) for row in await session.execute(text(f"SELECT * FROM {table}"))]
        return sorted(rows, key=repr)


async def test_an_onboarded_customer_can_file_a_ticket_at_once(stack: Stack) -> None:
    admin = stack.as_("dev-admin")

    created = await stack.http.post("/customers", json=HOOLI, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/customers/hooli"
    customer = created.json()
    assert (customer["id"], customer["name"], customer["active"]) == ("hooli", "Hooli", True)
    assert customer["contract"]["contract_id"] == "ctr-hooli"
    assert customer["contract"]["revision"] == 1
    assert (await stack.http.get("/customers/hooli", headers=admin)).json() == customer
    assert "hooli" in [c["id"] for c in (await stack.http.get("/customers", headers=admin)).json()]

    filed = await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)
    assert filed.status_code == 201, filed.text
    ticket = filed.json()
    assert ticket["customer_id"] == "hooli"
    assert ticket["terms"]["contract_revision"] == 1
    assert ticket["response_target"] == "1 business day"


async def test_a_contract_edit_bumps_the_revision_and_open_tickets_keep_their_terms(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    assert (await stack.http.post("/customers", json=HOOLI, headers=admin)).status_code == 201
    before = (await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)).json()

    faster = HOOLI_CONTRACT | {"overrides": {"response": {"2": {"minutes": 120, "calendar": "extended"}}}}
    edited = await stack.http.put("/customers/hooli/contract", json=faster, headers=admin)
    assert edited.status_code == 200, edited.text
    assert edited.json()["revision"] == 2
    assert edited.json()["overrides"]["response"]["2"]["label"] == "2 h extended"
    premium = faster | {"tier": "premium", "coverage_24x7": True}
    again = await stack.http.put("/customers/hooli/contract", json=premium, headers=admin)
    assert again.json()["revision"] == 3

    shown = (await stack.http.get("/customers/hooli/contract", headers=admin)).json()
    assert shown == again.json()
    assert (shown["tier"], shown["coverage_24x7"], shown["timezone"]) == (
        "premium",
        True,
        "America/Los_Angeles",
    )
    still = (await stack.http.get(f"/tickets/{before['ticket_id']}", headers=admin)).json()
    assert still["terms"]["contract_revision"] == 1
    assert still["response_target"] == before["response_target"] == "1 business day"
    after = (await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)).json()
    assert after["terms"]["contract_revision"] == 3
    assert after["response_target"] == "2 h extended"


async def test_a_deactivated_customer_files_nothing_and_keeps_its_contract_on_record(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    contract = (await stack.http.get("/customers/globex/contract", headers=admin)).json()

    deactivated = await stack.http.delete("/customers/globex", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False
    assert deactivated.json()["contract"] == contract
    assert (await stack.http.delete("/customers/globex", headers=admin)).json() == deactivated.json()

    listed = [c["id"] for c in (await stack.http.get("/customers", headers=admin)).json()]
    everyone = {
        c["id"]: c["active"]
        for c in (await stack.http.get("/customers?include_inactive=true", headers=admin)).json()
    }
    assert "globex" not in listed and everyone["globex"] is False and everyone["acme"] is True
    assert (await stack.http.get("/customers/globex/contract", headers=admin)).json() == contract
    edit = await stack.http.put("/customers/globex/contract", json=HOOLI_CONTRACT, headers=admin)
    assert (edit.status_code, edit.json()["rule"]) == (409, "customer_deactivated")

    refused = await stack.http.post("/tickets", json=ticket_for("globex"), headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "customer_deactivated"
    assert "deactivated" in refused.json()["detail"]


async def test_unknown_customers_are_404_on_every_customer_endpoint(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    answers = [
        await stack.http.get("/customers/hooli", headers=admin),
        await stack.http.get("/customers/hooli/contract", headers=admin),
        await stack.http.put("/customers/hooli/contract", json=HOOLI_CONTRACT, headers=admin),
        await stack.http.delete("/customers/hooli", headers=admin),
        await stack.http.get("/customers/acme%00", headers=admin),
        await stack.http.delete("/customers/ACME", headers=admin),
    ]

    assert [(a.status_code, a.json()["rule"]) for a in answers] == [(404, "unknown_customer")] * 6


async def test_a_new_partner_can_deliver_a_new_customer(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    partner = {"id": "fabrikam", "name": "Fabrikam", "connectsoft_tier": "standard"}

    created = await stack.http.post("/partners", json=partner, headers=admin)
    assert created.status_code == 201, created.text
    # Without its own 24/7 option, the partner's agreement has none (DESIGN.md §6).
    assert created.json() == partner | {"coverage_24x7": False}
    assert [p["id"] for p in (await stack.http.get("/partners", headers=admin)).json()] == [
        "fabrikam",
        "northwind",
    ]
    delivered = HOOLI | {
        "contract": HOOLI_CONTRACT
        | {"tier": "premium", "product_type": "partner_delivered", "partner_id": "fabrikam"}
    }
    customer = await stack.http.post("/customers", json=delivered, headers=admin)
    assert customer.status_code == 201, customer.text
    assert (customer.json()["contract"]["partner_id"], customer.json()["contract"]["partner_tier"]) == (
        "fabrikam",
        "standard",
    )


async def test_a_taken_id_is_409_and_changes_nothing(stack: Stack) -> None:
    admin = stack.as_("dev-admin")
    before = await catalog_rows(stack)

    customer = await stack.http.post("/customers", json=HOOLI | {"id": "acme"}, headers=admin)
    partner = await stack.http.post(
        "/partners", json={"id": "northwind", "name": "N2", "connectsoft_tier": "basic"}, headers=admin
    )

    assert (customer.status_code, customer.json()["rule"]) == (409, "duplicate_customer")
    assert customer.json()["detail"].startswith("id: ")
    assert (partner.status_code, partner.json()["rule"]) == (409, "duplicate_partner")
    assert await catalog_rows(stack) == before


BAD_ONBOARDING = [
    pytest.param({"timezone": "Europe/Atlantis"}, "contract.timezone", "unknown_timezone", id="timezone"),
    pytest.param({"country": "QQ"}, "contract.country", "unknown_country", id="country"),
    pytest.param(
        {"tier": "premium", "product_type": "partner_delivered"},
        "contract.partner_id",
        "partner_required",
        id="partner-delivered-without-partner",
    ),
    pytest.param(
        {"product_type": "partner_delivered", "partner_id": "contoso-partners"},
        "contract.partner_id",
        "unknown_partner",
        id="unknown-partner",
    ),
    pytest.param(
        {"partner_id": "northwind"}, "contract.partner_id", "partner_not_allowed", id="partner-on-platform"
    ),
    pytest.param(
        {"product_type": "bespoke"}, "contract.project", "project_required", id="bespoke-without-project"
    ),
    pytest.param({"coverage_24x7": True}, "contract.coverage_24x7", "coverage_24x7_premium_only", id="24x7"),
    pytest.param(
        {"overrides": {"response": {"0": {"minutes": 60, "calendar": "24x7"}}}},
        "contract.overrides.response.0",
        "unknown_severity",
        id="severity-0",
    ),
    pytest.param(
        {"overrides": {"periodic_update": {"sev1": {"minutes": 60, "calendar": "24x7"}}}},
        "contract.overrides.periodic_update.sev1",
        "unknown_severity",
        id="severity-sev1",
    ),
    # Refused by the schema itself: still a 422 naming the field.
    pytest.param({"tier": "gold"}, "contract.tier", "invalid_request", id="tier"),
    pytest.param({"timezon": "UTC"}, "contract.timezon", "invalid_request", id="misspelled-field"),
    pytest.param(
        {"overrides": {"response": {"1": {"minutes": 60, "calendar": "24x7", "minuts": 5}}}},
        "contract.overrides.response.1.minuts",
        "invalid_request",
        id="misspelled-override-field",
    ),
]


@pytest.mark.parametrize(("contract", "field", "rule"), BAD_ONBOARDING)
async def test_bad_onboarding_is_422_naming_field_and_rule_and_writes_nothing(
    stack: Stack, contract: dict[str, Any], field: str, rule: str
) -> None:
    before = await catalog_rows(stack)

    response = await stack.http.post(
        "/customers", json=HOOLI | {"contract": HOOLI_CONTRACT | contract}, headers=stack.as_("dev-admin")
    )

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["rule"] == rule
    assert problem["detail"].startswith(f"{field}: ") or f"{field}: " in problem["detail"]
    assert await catalog_rows(stack) == before


BAD_EDITS = [
    pytest.param({"timezone": "Berlin"}, "timezone", "unknown_timezone", id="timezone"),
    pytest.param({"product_type": "bespoke", "project": ""}, "project", "project_required", id="bespoke"),
    pytest.param({"partner_id": "northwind"}, "partner_id", "partner_not_allowed", id="partner"),
    pytest.param(
        {"overrides": {"resolution": {"5": {"minutes": 60, "calendar": "business"}}}},
        "overrides.resolution.5",
        "unknown_severity",
        id="severity-5",
    ),
]


@pytest.mark.parametrize(("contract", "field", "rule"), BAD_EDITS)
async def test_bad_contract_edit_is_422_naming_field_and_rule_and_keeps_the_revision(
    stack: Stack, contract: dict[str, Any], field: str, rule: str
) -> None:
    admin = stack.as_("dev-admin")
    before = await catalog_rows(stack)

    response = await stack.http.put(
        "/customers/globex/contract", json=HOOLI_CONTRACT | contract, headers=admin
    )

    assert response.status_code == 422, response.text
    assert (response.json()["rule"], response.json()["detail"].split(": ")[0]) == (rule, field)
    assert (await stack.http.get("/customers/globex/contract", headers=admin)).json()["revision"] == 1
    assert await catalog_rows(stack) == before


# --- `escalator customers` and `escalator partners` -------------------------------------------


def customer_rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines()[1:] if line.strip()}


def test_cli_onboards_edits_and_deactivates_a_customer(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["partners", "add", "--id", "fabrikam", "--name", "Fabrikam", "--tier", "standard"]) == 0
    assert "fabrikam" in capsys.readouterr().out
    onboard = ["customers", "add", "--id", "hooli", "--name", "Hooli", "--tier", "premium"]
    onboard += ["--product-type", "partner_delivered", "--timezone", "America/Los_Angeles", "--country", "US"]
    assert cli.main([*onboard, "--partner", "fabrikam"]) == 0
    added = customer_rows(capsys.readouterr().out)["hooli"]
    assert added == "hooli Hooli yes premium partner_delivered America/Los_Angeles US fabrikam - 1".split()

    assert cli.main([*onboard[:3], "initech2", *onboard[4:], "--partner", "nobody"]) == 2
    refused = capsys.readouterr().err
    assert "contract.partner_id: no partner 'nobody'" in refused and "unknown_partner" in refused

    assert cli.main(["customers", "contract", "hooli", "--country", "", "--coverage-24x7"]) == 0
    edited = capsys.readouterr().out
    assert "revision 2" in edited
    assert customer_rows(edited.split("\n", 1)[1])["hooli"][6] == "-"
    assert cli.main(["customers", "contract", "hooli", "--tier", "standard"]) == 2
    assert "coverage_24x7_premium_only" in capsys.readouterr().err
    assert cli.main(["customers", "contract", "hooli"]) == 2
    assert "nothing to change" in capsys.readouterr().err

    assert cli.main(["customers", "deactivate", "hooli"]) == 0
    capsys.readouterr()
    assert cli.main(["customers", "list"]) == 0
    assert "hooli" not in customer_rows(capsys.readouterr().out)
    assert cli.main(["customers", "list", "--all"]) == 0
    listed = customer_rows(capsys.readouterr().out)["hooli"]
    assert (listed[2], listed[-1]) == ("no", "2")
    assert cli.main(["customers", "deactivate", "nobody"]) == 1


async def test_intake_reads_a_contracts_terms_once_per_revision_and_a_new_revision_at_once(
    stack: Stack,
) -> None:
    admin = stack.as_("dev-admin")
    terms = stack.http._transport.app.state.terms_by_revision  # type: ignore[attr-defined]
    assert (await stack.http.post("/customers", json=HOOLI, headers=admin)).status_code == 201
    reads = terms.reads

    first = (await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)).json()
    second = (await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)).json()
    # The second intake found revision 1 in memory: it asked only for the revision.
    assert terms.reads == reads + 1
    assert first["terms"] == second["terms"] and first["terms"]["contract_revision"] == 1

    faster = HOOLI_CONTRACT | {"overrides": {"response": {"2": {"minutes": 120, "calendar": "extended"}}}}
    assert (await stack.http.put("/customers/hooli/contract", json=faster, headers=admin)).status_code == 200
    after = (await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)).json()
    # The very next intake is filed under revision 2, read afresh.
    assert terms.reads == reads + 2
    assert after["terms"]["contract_revision"] == 2
    assert after["response_target"] == "2 h extended"

    # Deactivation is read on every intake, whatever the revision.
    assert (await stack.http.delete("/customers/hooli", headers=admin)).status_code == 200
    refused = await stack.http.post("/tickets", json=ticket_for("hooli"), headers=admin)
    assert (refused.status_code, refused.json()["rule"]) == (422, "customer_deactivated")
