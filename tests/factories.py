"""Builders for test tickets: the demo catalog's contracts, pinned the way intake pins them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle

import policies
from store.demo_catalog import DEMO_CATALOG
from workflows import machine, policy
from workflows.actions.close import Close
from workflows.changes import ChangeTracker
from workflows.entitlement import build_entitlement
from workflows.enums import Category, Channel, Product, ProductType, Role, Severity
from workflows.models import SYSTEM, Principal, TicketOpened, TicketStep
from workflows.terms import ContractTerms
from workflows.ticket import delivery_for

# Principals as API keys name them (DESIGN.md §11). `dev-support` is a Level 3 engineer.
ADMIN = Principal(role=Role.ADMIN, name="root")
SUPPORT = Principal(role=Role.SUPPORT, name="anna", level=3)


# Closes a test's ticket whatever its clocks say: a live binding clock needs a reason.
TEST_OVER = Close(actor=SYSTEM, note="test over")


async def close_when_done(handle: WorkflowHandle[Any, Any]) -> None:
    """Close a test's ticket and wait for its run to end, so no work is left pending."""
    await handle.execute_update("close", TEST_OVER)
    await handle.result()


def engineer(level: int, name: str | None = None) -> Principal:
    """A ConnectSoft support engineer at `level`."""
    return Principal(role=Role.SUPPORT, name=name or f"l{level}-engineer", level=level)


def partner(partner_id: str = "northwind") -> Principal:
    return Principal(role=Role.PARTNER, name=partner_id, partner_id=partner_id)


def customer(customer_id: str) -> Principal:
    return Principal(role=Role.CUSTOMER, name=customer_id, customer_id=customer_id)


# The same contracts `make up` seeds, as intake reads them from the catalog.
# The opening hours of the current policy, for tests of the calendar math itself (the
# benchmarks import this module before bench/__main__ installs the policy documents).
policies.install()
CALENDAR_HOURS = policy.current().calendar_hours
DEMO_TERMS: dict[str, ContractTerms] = {terms.customer_id: terms for terms in DEMO_CATALOG.contracts}

PRODUCT_FOR = {
    ProductType.PLATFORM: Product.IDENTITY,
    ProductType.BESPOKE: Product.BESPOKE,
    ProductType.PARTNER_DELIVERED: Product.PARTNER_SOLUTION,
}


def opened_ticket(
    customer_id: str,
    severity: int,
    received_at: datetime,
    *,
    terms: ContractTerms | None = None,
    channel: Channel = Channel.EMAIL,
    category: Category = Category.INCIDENT,
    title: str = "Login down",
) -> TicketOpened:
    terms = terms or DEMO_TERMS[customer_id]
    return TicketOpened(
        ticket_id=uuid.uuid4().hex[:12],
        customer_id=customer_id,
        title=title,
        description="Every sign-in returns HTTP 500.",
        severity=Severity(severity),
        product=PRODUCT_FOR[terms.product_type],
        channel=channel,
        category=category,
        received_at=received_at,
        entitlement=build_entitlement(terms, received_at=received_at),
    )


def next_local(weekday: int, hour: int, zone: ZoneInfo, after: datetime) -> datetime:
    """The next `weekday` (Mon=0) at `hour`:00 local time, at least a week after `after`."""
    day = (after.astimezone(zone) + timedelta(days=7)).date()
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone)


def deadline_steps(ticket_id: str, received: datetime) -> list[TicketStep]:
    """A Premium Sev 3 ticket's intake, its 75% warning and its breach, as the workflow would
    hand them to `notify_and_record` (each record written: the next carries only what is new)."""
    opened = opened_ticket("acme", 3, received).model_copy(update={"ticket_id": ticket_id})
    outcome = machine.open_ticket(opened)
    state, tracker = outcome.state, ChangeTracker.starting(continued=False)
    steps: list[TicketStep] = []
    notices, now = outcome.notifications, received
    while True:
        pending = tracker.next_record(state, now, notices, [])
        if not steps:  # the workflow's first record carries its pinned opening (what-if's)
            pending.record.opened = opened
        deliveries = [delivery_for(state, each) for each in notices if each.channel is not None]
        steps.append(TicketStep(record=pending.record, deliveries=deliveries))
        if len(steps) == 3:
            return steps
        tracker.settle(state, pending, written=True)
        wakeup = machine.next_wakeup(state)
        assert wakeup is not None
        now = wakeup.at
        notices = machine.advance(state, now, in_place=True).notifications
