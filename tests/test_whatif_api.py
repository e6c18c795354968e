"""What-if end to end (issue 20): POST /policy/simulate and `escalator whatif` over tickets a
real stack ran, reading their record in the read model (or their Temporal histories, when
asked); nothing changes while they run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api import whatif_service as whatif
from runtime.settings import get_settings
from store.db import OutboxNotification, TicketEventRecord
from tests.fixtures_api import Stack, wait_until_quiet, wait_until_recorded
from worker.cli import main as escalator
from workflows import policy
from workflows.policy import TicketRules
from workflows.whatif_report import GroupBy

ADMIN = "dev-admin"
TICKETS = [
    {"customer_id": "acme", "severity": 3, "product": "audit", "category": "performance"},
    {"customer_id": "globex", "severity": 1, "product": "identity", "category": "incident"},
]


def ticket_body(fields: dict[str, Any]) -> dict[str, Any]:
    return {"title": "Export slow", "description": "It takes minutes", "channel": "email", **fields}


async def file_and_acknowledge(stack: Stack) -> list[str]:
    ids = []
    for fields in TICKETS:
        response = await stack.http.post("/tickets", json=ticket_body(fields), headers=stack.as_(ADMIN))
        assert response.status_code == 201, response.text
        ticket_id = response.json()["ticket_id"]
        answer = await stack.http.post(f"/tickets/{ticket_id}/acknowledge", json={}, headers=stack.as_(ADMIN))
        assert answer.status_code == 200, answer.text
        await wait_until_recorded(stack, ticket_id)
        ids.append(ticket_id)
    return ids


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}


async def footprint(stack: Stack, ids: list[str]) -> tuple[Any, ...]:
    """What a simulation must leave alone: histories, timelines, the outbox (taken once every
    ticket is asleep on its timer, its notices delivered and recorded)."""
    for each in ids:
        await wait_until_quiet(stack.handle(each))
    lengths = [len((await stack.handle(each).fetch_history()).events) for each in ids]
    async with stack.sessionmaker() as session:
        events = await session.scalar(select(func.count()).select_from(TicketEventRecord))
        notices = await session.scalar(select(func.count()).select_from(OutboxNotification))
    return (*lengths, events, notices)


async def test_simulating_the_unchanged_policy_flips_nothing_and_changes_nothing(stack: Stack) -> None:
    ids = await file_and_acknowledge(stack)
    before = await footprint(stack, ids)
    body = {"candidate": policy.current().document(), **window(), "group_by": "customer"}

    response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"tickets", "groups", "flips"}
    assert answer["tickets"] == 2
    assert answer["flips"] == []
    assert [group["key"] for group in answer["groups"]] == ["acme", "globex"]
    for group in answer["groups"]:
        assert group["before"] == group["after"]
        assert group["before"]["first_response_met"] == 1
    assert await footprint(stack, ids) == before


async def test_the_window_and_the_customer_choose_the_tickets(stack: Stack) -> None:
    await file_and_acknowledge(stack)
    document = policy.current().document()
    later = {"from": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "to": window()["to"]}
    cases = [({**window(), "customer_id": "globex"}, 1), (later, 0)]
    for chosen, expected in cases:
        body = {"candidate": document, **chosen}
        response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))
        assert response.status_code == 200, response.text
        assert response.json()["tickets"] == expected


async def test_a_candidate_that_fails_validation_is_a_422_naming_the_field(stack: Stack) -> None:
    document = policy.current().document()
    document["response_targets"]["standard"]["1"]["minutes"] = -5
    body = {"candidate": document, **window()}

    response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))

    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["rule"] == "invalid_request"
    assert "candidate.response_targets.standard.1.minutes" in problem["detail"]


async def test_an_empty_window_is_refused(stack: Stack) -> None:
    now = datetime.now(UTC).isoformat()
    body = {"candidate": policy.current().document(), "from": now, "to": now}
    response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))
    assert response.status_code == 422
    assert response.json()["rule"] == "empty_window"


@pytest.fixture
def cli_settings(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """`escalator` in this process, pointed at the stack's database and Temporal."""
    bind = stack.sessionmaker.kw["bind"]
    monkeypatch.setenv("ESCALATOR_DATABASE_URL", bind.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ESCALATOR_TEMPORAL_ADDRESS", stack.client.service_client.config.target_host)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_the_cli_verifies_and_simulates_the_same_tickets(
    stack: Stack, cli_settings: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await file_and_acknowledge(stack)
    span = window()
    dates = ["--from", span["from"], "--to", span["to"]]

    assert await asyncio.to_thread(escalator, ["whatif", "--verify", *dates]) == 0
    assert "2 tickets, 0 differ from the read model" in capsys.readouterr().out

    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps(policy.current().document()))
    assert await asyncio.to_thread(escalator, ["whatif", "--candidate", str(candidate), *dates]) == 0
    printed = json.loads(capsys.readouterr().out)
    body = {"candidate": policy.current().document(), **span}
    response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))
    assert printed == response.json()
    assert printed["tickets"] == 2 and printed["flips"] == []

    candidate.write_text(json.dumps({**policy.current().document(), "warn_ratio": 2}))
    assert await asyncio.to_thread(escalator, ["whatif", "--candidate", str(candidate), *dates]) == 2
    assert "warn_ratio" in capsys.readouterr().err


async def test_a_candidate_contract_changes_only_its_customers_tickets_and_writes_nothing(
    stack: Stack, cli_settings: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A candidate contract (the body of PUT /customers/{id}/contract): acme as a Basic
    customer. Only acme's ticket is run; its first response, met in time, is no longer a binding
    one under Basic's best effort. The catalog keeps the contract as it was."""
    ids = await file_and_acknowledge(stack)
    before = await footprint(stack, ids)
    current = (await stack.http.get("/customers/acme/contract", headers=stack.as_(ADMIN))).json()
    basic = {
        "tier": "basic",
        "product_type": current["product_type"],
        "timezone": current["timezone"],
        "country": current["country"],
    }
    body = {"candidate_contract": basic, "customer_id": "acme", **window()}

    response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["tickets"] == 1
    [group] = answer["groups"]
    assert (group["before"]["first_response_met"], group["after"]["first_response_met"]) == (1, 0)
    assert await footprint(stack, ids) == before
    after = (await stack.http.get("/customers/acme/contract", headers=stack.as_(ADMIN))).json()
    assert (after["tier"], after["revision"]) == (current["tier"], current["revision"])

    # The CLI gives the same answer from the same file.
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(basic))
    dates = ["--from", body["from"], "--to", body["to"]]
    argv = ["whatif", "--candidate-contract", str(path), "--customer", "acme", *dates]
    assert await asyncio.to_thread(escalator, argv) == 0
    assert json.loads(capsys.readouterr().out) == answer

    # Refused, naming what to fix: no customer, both candidates, an unknown customer, a bad tier.
    refusals = [
        ({"candidate_contract": basic, **window()}, 422, "candidate"),
        ({**body, "candidate": policy.current().document()}, 422, "candidate"),
        ({**body, "customer_id": "nobody"}, 404, "unknown_customer"),
        ({**body, "candidate_contract": {**basic, "tier": "gold"}}, 422, "invalid_request"),
    ]
    for refused, status, rule in refusals:
        answer = await stack.http.post("/policy/simulate", json=refused, headers=stack.as_(ADMIN))
        assert (answer.status_code, answer.json()["rule"]) == (status, rule), answer.text
    assert await asyncio.to_thread(escalator, argv[:3] + dates) == 2
    assert "--customer" in capsys.readouterr().err


def standard_sev1_in_2_hours() -> dict[str, Any]:
    document = policy.current().document()
    document["version"] = "candidate-standard-sev1-2h"
    document["response_targets"]["standard"]["1"]["minutes"] = 120
    return document


async def test_the_read_model_and_the_histories_give_the_same_simulation(
    stack: Stack, cli_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The read model's record of each ticket (its pinned opening, its actions with their times)
    is the one its history holds; simulated from either, the unchanged policy flips nothing and
    every candidate gives the same report. `--verify` checks both against the timelines."""
    ids = await file_and_acknowledge(stack)
    for each in ids:
        await wait_until_quiet(stack.handle(each))
    span = window()
    start, end = datetime.fromisoformat(span["from"]), datetime.fromisoformat(span["to"])

    from_read_model = await whatif.recorded_tickets(None, stack.sessionmaker, start, end)
    from_histories = await whatif.recorded_tickets(
        stack.client, stack.sessionmaker, start, end, from_histories=True
    )

    assert from_read_model.unrecorded == [] and len(from_read_model.tickets) == 2
    for mine, theirs in zip(from_read_model.tickets, from_histories.tickets, strict=True):
        assert mine.opened == theirs.opened
        assert mine.actions == theirs.actions
        assert [type(a.action).__name__ for a in mine.actions] == ["Acknowledge"]
    for document in (policy.current().document(), standard_sev1_in_2_hours()):
        candidate = whatif.Candidate(rules=TicketRules.model_validate(document))
        answers = [
            whatif.compare(records.tickets, candidate, GroupBy.CUSTOMER)
            for records in (from_read_model, from_histories)
        ]
        assert answers[0] == answers[1]
        over_http = []
        for histories in (False, True):
            body = {"candidate": document, **span, "group_by": "customer", "from_histories": histories}
            response = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))
            assert response.status_code == 200, response.text
            over_http.append(response.json())
        assert over_http[0] == over_http[1] == json.loads(json.dumps(answers[0], default=str))
    assert answers[0]["tickets"] == 2

    dates = ["--from", span["from"], "--to", span["to"]]
    for source in ([], ["--from-histories"]):
        assert await asyncio.to_thread(escalator, ["whatif", "--verify", *dates, *source]) == 0
        assert "2 tickets, 0 differ from the read model" in capsys.readouterr().out
