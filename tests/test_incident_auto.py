"""Automatic major incidents (issue 19, DESIGN.md §13): K tickets of Sev 1-2 for one product
within a window open one incident. The watcher's pure window first, then end to end on the dev
server: what counts and what does not, the incident it opens and links, a burst after it is
resolved, K+5 tickets filed at once, the setting at 0; the watcher's history replays."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from runtime.settings import Settings
from tests.fixtures_api import Stack, sqlite_stack
from tests.incident_support import (
    CUSTOMER,
    PARTNER,
    SUPPORT,
    fanned_out,
    file_ticket,
    incident_handle,
    incident_until,
    linked_to,
    ticket_until,
)
from tests.test_api_permissions import console_as
from tests.test_replay import markers
from worker.worker import TICKET_WORKFLOWS
from workflows.enums import Product, Severity
from workflows.incident import AUTO_INCIDENT_PATCH
from workflows.incident_watch_model import (
    AutoIncidentRule,
    WatchedTicket,
    WatchState,
    auto_incident,
    duration_text,
    incident_watch_id,
)

K = 3
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RULE = AutoIncidentRule(min_tickets=K, window_seconds=600)


# --- The pure window ---------------------------------------------------------------------------


def ticket(name: str, minutes: float, severity: int = 2) -> WatchedTicket:
    return WatchedTicket(
        ticket_id=name, severity=Severity(severity), received_at=T0 + timedelta(minutes=minutes)
    )


def test_k_tickets_within_the_window_make_a_burst_and_fewer_do_not() -> None:
    state = WatchState(product=Product.IDENTITY)
    assert state.arrive(ticket("a", 0), RULE) is None
    assert state.arrive(ticket("b", 4, severity=1), RULE) is None
    burst = state.arrive(ticket("c", 9), RULE)
    assert burst is not None and [t.ticket_id for t in burst.tickets] == ["a", "b", "c"]
    assert burst.severity == Severity.CRITICAL and state.window == []


def test_tickets_older_than_the_window_drop_out_even_when_they_arrive_late() -> None:
    state = WatchState(product=Product.IDENTITY)
    state.arrive(ticket("a", 0), RULE)
    state.arrive(ticket("b", 11), RULE)
    # 11 minutes after the first: "a" has left the window; "c", late from another replica, fits.
    assert state.arrive(ticket("c", 5), RULE) is None
    assert [t.ticket_id for t in state.window] == ["c", "b"]
    assert state.arrive(ticket("d", 14), RULE) is not None


def test_sev_3_a_ticket_counted_twice_and_tickets_while_open_do_not_count() -> None:
    state = WatchState(product=Product.IDENTITY)
    state.arrive(ticket("a", 0), RULE)
    assert state.arrive(ticket("a", 0), RULE) is None
    assert state.arrive(ticket("s3", 1, severity=3), RULE) is None
    assert [t.ticket_id for t in state.window] == ["a"]
    state.opening("inc-auto-identity-a")
    for name in ("b", "c", "d"):
        assert state.arrive(ticket(name, 2), RULE) is None
    state.resolved("inc-other")
    assert state.open_incident_id == "inc-auto-identity-a"
    state.resolved("inc-auto-identity-a")
    assert state.open_incident_id is None and state.arrivals == 6


def test_the_automatic_incident_is_titled_severe_and_opened_by_the_system() -> None:
    burst = WatchState(product=Product.IDENTITY)
    for name, minutes, severity in (("t1", 0, 2), ("t2", 1, 1)):
        burst.arrive(ticket(name, minutes, severity), RULE)
    found = burst.arrive(ticket("t3", 2), RULE)
    assert found is not None
    opened = auto_incident(found, RULE, product=Product.IDENTITY, watcher_id="w", now=T0)
    assert opened.incident_id == "inc-auto-identity-t1"
    assert opened.title == "Automatic: 3 Sev 1-2 identity tickets in 10 min"
    assert opened.severity == Severity.CRITICAL
    assert str(opened.opened_by) == "system:incident-watch"
    [rule] = opened.rules
    assert (rule.product, rule.severities, rule.received_from) == (Product.IDENTITY, [1, 2], T0)
    assert (duration_text(3600), duration_text(90), duration_text(0.5)) == ("1 h", "90 s", "0.5 s")


def test_the_settings_take_seconds_or_an_iso_duration_and_refuse_a_negative_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().incident_auto_min_tickets == 0
    monkeypatch.setenv("ESCALATOR_INCIDENT_AUTO_WINDOW", "90")
    assert Settings().incident_auto_window == timedelta(seconds=90)
    monkeypatch.setenv("ESCALATOR_INCIDENT_AUTO_WINDOW", "PT10M")
    assert Settings().incident_auto_window == timedelta(minutes=10)
    monkeypatch.setenv("ESCALATOR_INCIDENT_AUTO_MIN_TICKETS", "-1")
    with pytest.raises(ValidationError):
        Settings()


# --- End to end ----------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def auto_stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """Automatic incidents on (K=3 in 10 min); intake reads the open incidents afresh each
    time, and an incident sweeps every second, so that a test waits on links, not on minutes."""
    async with sqlite_stack(
        dev_env,
        tmp_path / "api.db",
        incident_auto_min_tickets=K,
        incident_auto_window=timedelta(minutes=10),
        incident_cache_seconds=0.0,
        incident_sweep_seconds=1,
    ) as running:
        yield running


async def task_queue_of(stack: Stack, ticket_id: str) -> str:
    return (await stack.handle(ticket_id).describe()).task_queue


def watcher(stack: Stack, task_queue: str, product: str) -> WorkflowHandle[Any, Any]:
    return stack.client.get_workflow_handle(incident_watch_id(task_queue, Product(product)))


async def watch_until(
    stack: Stack, task_queue: str, product: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The watcher's state once `done` holds: checked again on every new event of its history."""
    handle = watcher(stack, task_queue, product)
    state: dict[str, Any] = await handle.query("state")
    if done(state):
        return state
    async for _ in handle.fetch_history_events(wait_new_event=True):
        state = await handle.query("state")
        if done(state):
            return state
    raise AssertionError(f"the watcher ended before: {state}")


async def incidents_on(stack: Stack, task_queue: str) -> list[str]:
    query = f"WorkflowType = 'IncidentWorkflow' AND TaskQueue = '{task_queue}'"
    return [execution.id async for execution in stack.client.list_workflows(query)]


async def listed(stack: Stack, who: str, incident_id: str) -> set[str]:
    response = await stack.http.get("/tickets", params={"incident_id": incident_id}, headers=stack.as_(who))
    assert response.status_code == 200, response.text
    return {item["ticket_id"] for item in response.json()["items"]}


async def resolve(stack: Stack, incident_id: str) -> None:
    response = await stack.http.post(
        f"/incidents/{incident_id}/resolve", json={"resolution": "Failed over"}, headers=stack.as_(SUPPORT)
    )
    assert response.status_code == 202, response.text
    await fanned_out(stack, incident_id)


async def test_k_sev_1_2_tickets_of_a_product_open_one_incident_that_links_them(auto_stack: Stack) -> None:
    stack = auto_stack
    first = await file_ticket(stack, "acme", severity=2, product="bot")
    second = await file_ticket(stack, "globex", severity=1, product="bot")
    # Neither Sev 3 nor another product counts toward the bot burst.
    minor = [(await file_ticket(stack, "acme", severity=3, product="bot"))["ticket_id"] for _ in range(K)]
    elsewhere = await file_ticket(stack, "acme", severity=2, product="audit")
    queue = await task_queue_of(stack, first["ticket_id"])

    waiting = await watch_until(stack, queue, "bot", lambda s: s["arrivals"] == 2)
    assert (len(waiting["window"]), waiting["open_incident_id"], waiting["opened"]) == (K - 1, None, [])
    other = await watch_until(stack, queue, "audit", lambda s: s["arrivals"] == 1)
    assert [t["ticket_id"] for t in other["window"]] == [elsewhere["ticket_id"]]
    assert await incidents_on(stack, queue) == []

    third = await file_ticket(stack, "initech", severity=2, product="bot")
    burst = [first["ticket_id"], second["ticket_id"], third["ticket_id"]]
    opened = await watch_until(stack, queue, "bot", lambda s: s["open_incident_id"] is not None)
    incident = opened["open_incident_id"]
    assert incident == f"inc-auto-bot-{first['ticket_id']}" and opened["opened"] == [incident]
    for ticket_id in burst:
        await ticket_until(stack, ticket_id, linked_to(incident))

    seen = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert seen["title"] == f"Automatic: {K} Sev 1-2 bot tickets in 10 min"
    assert (seen["severity"], seen["opened_by"], seen["status"]) == (1, "system:incident-watch", "open")
    assert [(r["product"], r["severities"]) for r in seen["rules"]] == [("bot", [1, 2])]
    assert datetime.fromisoformat(seen["rules"][0]["received_from"]) == datetime.fromisoformat(
        first["received_at"]
    )
    # The ticket list by incident, scoped like the rest of the list.
    assert await listed(stack, SUPPORT, incident) == set(burst)
    assert await listed(stack, CUSTOMER, incident) == {first["ticket_id"]}
    assert await listed(stack, PARTNER, incident) == set()
    # And the console's queue, from the incident's page.
    page = (await stack.http.get(f"/console/incidents/{incident}", headers=console_as(SUPPORT))).text
    assert "by system:incident-watch" in page
    assert f'href="/console?status=all&amp;incident={incident}"' in page
    queue_page = await stack.http.get(
        "/console", params={"status": "all", "incident": incident}, headers=console_as(SUPPORT)
    )
    assert set(re.findall(r'data-ticket="([0-9a-f]+)"', queue_page.text)) == set(burst)

    # A later Sev 1 joins it (at intake, or by the sweep if visibility lagged) and opens nothing.
    later = await file_ticket(stack, "acme", severity=1, product="bot")
    await ticket_until(stack, later["ticket_id"], linked_to(incident))
    for ticket_id in (*minor, elsewhere["ticket_id"]):
        assert (await stack.handle(ticket_id).query("state"))["incident_id"] is None
    after = await watcher(stack, queue, "bot").query("state")
    assert (after["window"], after["opened"]) == ([], [incident])

    # Otherwise a normal incident: an update reaches every linked ticket, then it resolves.
    posted = await stack.http.post(
        f"/incidents/{incident}/updates", json={"message": "Failing over"}, headers=stack.as_(SUPPORT)
    )
    assert posted.status_code == 202, posted.text
    state = await fanned_out(stack, incident)
    assert (state["updates"][0]["delivered"], state["updates"][0]["total"]) == (K + 1, K + 1)
    await resolve(stack, incident)
    await watch_until(stack, queue, "bot", lambda s: s["open_incident_id"] is None)

    # A new burst after it resolved opens a new incident.
    again = [(await file_ticket(stack, "globex", severity=2, product="bot"))["ticket_id"] for _ in range(K)]
    reopened = await watch_until(stack, queue, "bot", lambda s: len(s["opened"]) == 2)
    second_incident = reopened["open_incident_id"]
    assert second_incident == f"inc-auto-bot-{again[0]}" != incident
    for ticket_id in again:
        await ticket_until(stack, ticket_id, linked_to(second_incident))
    await resolve(stack, second_incident)
    await watch_until(stack, queue, "bot", lambda s: s["open_incident_id"] is None)

    # The watcher's history and the incidents' replay under today's code.
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    watch_history = await watcher(stack, queue, "bot").fetch_history()
    kinds = [event.event_type for event in watch_history.events]
    assert kinds.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 2
    assert kinds.count(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED) == 2 * K
    incident_history = await incident_handle(stack, incident).fetch_history()
    assert AUTO_INCIDENT_PATCH in markers(incident_history)
    for history in (watch_history, incident_history):
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None


async def test_k_plus_5_tickets_filed_at_once_open_exactly_one_incident(auto_stack: Stack) -> None:
    stack = auto_stack
    customers = ("acme", "globex", "initech")
    filed = await asyncio.gather(
        *(file_ticket(stack, customers[n % 3], severity=2, product="config") for n in range(K + 5))
    )
    queue = await task_queue_of(stack, filed[0]["ticket_id"])
    opened = await watch_until(stack, queue, "config", lambda s: s["open_incident_id"] is not None)
    incident = opened["open_incident_id"]
    # Every one of them joins it: the burst by the watcher, the rest at intake or by the sweep.
    for each in filed:
        await ticket_until(stack, each["ticket_id"], linked_to(incident))
    assert (await watcher(stack, queue, "config").query("state"))["opened"] == [incident]
    assert await incidents_on(stack, queue) == [f"incident-{incident}"]
    await resolve(stack, incident)
    await incident_until(stack, incident, lambda s: s["status"] == "resolved")


async def test_with_the_setting_at_0_intake_starts_no_watcher(stack: Stack) -> None:
    filed = [await file_ticket(stack, "acme", severity=1, product="identity") for _ in range(K + 1)]
    queue = await task_queue_of(stack, filed[0]["ticket_id"])
    with pytest.raises(RPCError) as missing:
        await watcher(stack, queue, "identity").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert await incidents_on(stack, queue) == []
