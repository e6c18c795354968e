"""Helpers for the incident tests: open one, file tickets, and wait (on workflow histories, never
by sleeping) until an incident or a ticket is as a test needs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType

from tests.fixtures_api import Stack, wait_until_quiet, wait_until_recorded

SUPPORT, ADMIN, PARTNER, CUSTOMER = "dev-support", "dev-admin", "dev-partner-northwind", "dev-customer-acme"
PRODUCT_OF = {"contoso": "partner_solution"}


def ticket_body(customer: str, severity: int = 2, product: str = "config") -> dict[str, Any]:
    return {
        "customer_id": customer,
        "title": "SSO fails",
        "description": "Every sign-in answers 500",
        "severity": severity,
        "product": PRODUCT_OF.get(customer, product),
        "channel": "email",
        "category": "incident" if severity == 1 else "bug",
    }


async def file_ticket(
    stack: Stack, customer: str, severity: int = 2, product: str = "config"
) -> dict[str, Any]:
    response = await stack.http.post(
        "/tickets", json=ticket_body(customer, severity, product), headers=stack.as_(ADMIN)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def open_incident(stack: Stack, **fields: Any) -> str:
    body = {
        "title": "Config service outage",
        "description": "Config reads fail in every region",
        "product": "config",
        "severity": 2,
        **fields,
    }
    response = await stack.http.post("/incidents", json=body, headers=stack.as_(SUPPORT))
    assert response.status_code == 201, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


def incident_handle(stack: Stack, incident_id: str) -> Any:
    return stack.client.get_workflow_handle(f"incident-{incident_id}")


async def incident_until(
    stack: Stack, incident_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The incident's state once `done` holds: checked again on every new event of its history."""
    handle = incident_handle(stack, incident_id)
    state: dict[str, Any] = await handle.query("state")
    if done(state):
        return state
    async for _ in handle.fetch_history_events(wait_new_event=True):
        state = await handle.query("state")
        if done(state):
            return state
    state = await handle.query("state")
    assert done(state), state
    return state


async def fanned_out(stack: Stack, incident_id: str) -> dict[str, Any]:
    """The incident once every update it has posted has reached all its tickets."""
    return await incident_until(stack, incident_id, lambda s: all(u["done"] for u in s["updates"]))


async def ticket_until(
    stack: Stack, ticket_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The ticket's state once `done` holds and the read model has recorded it."""
    handle = stack.handle(ticket_id)
    state: dict[str, Any] = await handle.query("state")
    if not done(state):
        async for _ in handle.fetch_history_events(wait_new_event=True):
            state = await handle.query("state")
            if done(state):
                break
    assert done(state), state
    await wait_until_recorded(stack, ticket_id)
    return state


def linked_to(incident_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda state: state["incident_id"] == incident_id


def an_hour_ago() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()


async def requests_taken(stack: Stack, incident_id: str) -> int:
    """Updates and signals the incident's history accepted (a refused one leaves none)."""
    taken = (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    )
    history = await incident_handle(stack, incident_id).fetch_history()
    return sum(1 for event in history.events if event.event_type in taken)


async def page_the_incident(stack: Stack, incident_id: str, product: str = "config") -> str:
    """Give the incident its page the way a storm does: a rule for Sev 1s of `product`, then an
    acme (Premium) Sev 1 filed under it, linked at intake, whose intake pages on-call and so
    triggers the incident's page. Waits until that notice is delivered; answers the ticket id."""
    added = await stack.http.post(
        f"/incidents/{incident_id}/links",
        json={"product": product, "severities": [1], "received_from": an_hour_ago()},
        headers=stack.as_(SUPPORT),
    )
    assert added.status_code == 200, added.text
    filed = await file_ticket(stack, "acme", severity=1, product=product)
    assert filed["incident_id"] == incident_id, filed
    await wait_until_quiet(stack.handle(filed["ticket_id"]))
    ticket_id: str = filed["ticket_id"]
    return ticket_id
