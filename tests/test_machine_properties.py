"""Invariants of the pure ticket machine over random histories of actions and time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ADMIN, DEMO_TERMS, SUPPORT, customer, engineer, opened_ticket, partner
from workflows import machine, policy
from workflows.models import (
    SYSTEM,
    Acknowledge,
    Audience,
    ChangeSeverity,
    ClockKind,
    ClockStatus,
    Close,
    Comment,
    Escalate,
    EscalationTrigger,
    Handback,
    Handoff,
    HandoffCategory,
    Notification,
    OwningLine,
    ProductType,
    Reopen,
    Resolve,
    Resume,
    Severity,
    TicketAction,
    TicketState,
    TicketStatus,
    WaitOnCustomer,
)

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HUMAN_TRIGGERS = [t for t in EscalationTrigger if t not in policy.current().system_triggers]
# Every kind of actor, some of them outside a ticket's reach (refused as not found).
PRINCIPALS = [
    ADMIN,
    SYSTEM,
    SUPPORT,
    engineer(1),
    engineer(2),
    engineer(4),
    partner("northwind"),
    partner("fabrikam"),
    *(customer(c) for c in sorted(DEMO_TERMS)),
]
actors = st.sampled_from(PRINCIPALS)

actions: st.SearchStrategy[TicketAction] = st.one_of(
    st.builds(Acknowledge, actor=actors),
    st.builds(Comment, actor=actors, body=st.just("b"), public=st.booleans()),
    st.builds(Escalate, actor=actors, level=st.integers(1, 4), trigger=st.sampled_from(HUMAN_TRIGGERS)),
    st.builds(Handoff, actor=actors, category=st.sampled_from(list(HandoffCategory))),
    st.builds(Handback, actor=actors, note=st.just("n")),
    st.builds(ChangeSeverity, actor=actors, severity=st.sampled_from(list(Severity)), reason=st.just("r")),
    st.builds(WaitOnCustomer, actor=actors),
    st.builds(Resume, actor=actors),
    st.builds(Resolve, actor=actors, resolution=st.just("r")),
    st.builds(Reopen, actor=actors, reason=st.just("r")),
    st.builds(Close, actor=actors, note=st.none() | st.just("duplicate")),
)
# Each step: wait some minutes (up to 3 days), maybe wake the worker on its own, maybe act.
steps = st.lists(
    st.tuples(st.integers(0, 3 * 24 * 60), st.booleans(), st.none() | actions),
    max_size=25,
)


@dataclass
class Life:
    """Every state a ticket passes through, and every notification it sends."""

    states: list[TicketState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    now: datetime = START

    def take(self, outcome: machine.Outcome) -> TicketState:
        keys = [n.key for n in outcome.notifications]
        assert len(keys) == len(set(keys)), keys  # one notice per audience per event
        self.states.append(outcome.state)
        self.notifications.extend(outcome.notifications)
        return outcome.state


def run(customer_id: str, severity: int, history: list[tuple[int, bool, Any]]) -> Life:
    """Refused actions are checked to change nothing, and to be refused by `validate` too."""
    life = Life()
    state = life.take(machine.open_ticket(opened_ticket(customer_id, severity, START)))
    now = START
    for minutes, woke, action in history:
        now += timedelta(minutes=minutes)
        life.now = now
        # Time comes first: the outcome is the same whether or not the worker woke on its own.
        late = state
        if woke:
            state = life.take(machine.advance(state, now))
        if action is None:
            continue
        before = state.model_dump()
        try:
            outcome = machine.apply(state, action, now)
        except machine.Refusal as refusal:
            assert refusal.message.endswith("."), refusal.message  # a sentence a person can act on
            assert state.model_dump() == before
            with pytest.raises(machine.Refusal) as refused_late:
                machine.apply(late, action, now)
            assert refused_late.value.kind == refusal.kind
            with pytest.raises(machine.Refusal):
                machine.validate(late, action, now)
            continue
        machine.validate(late, action, now)
        assert machine.apply(late, action, now).state == outcome.state
        state = life.take(outcome)
    return life


def breached_response_misses(state: TicketState) -> set[tuple[OwningLine, datetime]]:
    return {
        (c.owner, c.due_at)
        for c in state.clocks
        if c.status == ClockStatus.BREACHED and c.kind in machine.RESPONSE_CLOCKS
    }


def waited_by_the_timeline(state: TicketState, now: datetime) -> float:
    """Each wait runs from `waiting_on_customer` to the next resume, resolution or close."""
    total, since = 0.0, None
    for event in state.events:
        if event.kind == "waiting_on_customer" and since is None:
            since = event.at
        elif event.kind in ("resumed", "resolved", "closed") and since is not None:
            total += (event.at - since).total_seconds()
            since = None
    if since is not None and state.status == TicketStatus.WAITING_ON_CUSTOMER:
        total += (now - since).total_seconds()
    return total


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    customer_id=st.sampled_from(sorted(DEMO_TERMS)),
    severity=st.integers(1, 4),
    history=steps,
)
def test_machine_invariants_hold_over_any_history(
    customer_id: str, severity: int, history: list[Any]
) -> None:
    life = run(customer_id, severity, history)
    states = life.states
    ent = states[0].entitlement
    max_level = ent.max_level
    for earlier, later in itertools.pairwise(states):
        # The ladder only climbs, and never above the entitlement.
        assert earlier.level <= later.level <= max_level
        # Events are appended, never rewritten: the read model can key them by seq.
        assert later.events[: len(earlier.events)] == earlier.events
        # Once breached, a ticket stays breached, on either line; closed is final.
        assert later.sla_breached or not earlier.sla_breached
        assert later.partner_sla_breached or not earlier.partner_sla_breached
        if earlier.status == TicketStatus.CLOSED:
            assert later == earlier
        # A breached clock stays breached: never met, cancelled or running again.
        for was, now in zip(earlier.clocks, later.clocks, strict=False):
            if was.status == ClockStatus.BREACHED:
                assert (now.status, now.stopped_at) == (ClockStatus.BREACHED, was.stopped_at)
    final = states[-1]
    assert [e.seq for e in final.events] == list(range(1, final.next_seq))
    # The timeline reads in time order.
    assert all(a.at <= b.at for a, b in itertools.pairwise(final.events))
    for clock in final.clocks:
        assert clock.due_at >= clock.started_at
        if clock.warn_at is not None:
            assert clock.started_at <= clock.warn_at <= clock.due_at
    # Each flag counts only its own line's breaches: a partner clock never marks ConnectSoft.
    breached = [
        c for c in final.clocks if c.status == ClockStatus.BREACHED and c.kind != ClockKind.PERIODIC_UPDATE
    ]
    assert final.sla_breached == any(c.owner == OwningLine.CONNECTSOFT for c in breached)
    assert final.partner_sla_breached == any(c.owner == OwningLine.PARTNER for c in breached)
    breaches = [e for e in final.events if e.kind == "sla_breached"]
    for event in breaches:
        assert event.detail["line"] in {line.value for line in OwningLine}
    # One miss is one breach, and climbs the ladder at most once.
    resolution_breaches = sum(1 for c in breached if c.kind == ClockKind.RESOLUTION)
    assert len(breaches) == len(breached_response_misses(final)) + resolution_breaches
    climbs = [e for e in final.events if e.detail.get("trigger") == EscalationTrigger.SLA_BREACH.value]
    assert len(climbs) <= len(breaches)
    audiences = {n.audience for n in life.notifications}
    if ent.product_type == ProductType.PARTNER_DELIVERED:
        assert Audience.CUSTOMER not in audiences  # the partner speaks to its customers
    if max_level < 4:
        assert Audience.LEADERSHIP_L4 not in audiences
    # The time spent waiting on the customer, kept in the state since past events are not,
    # is what the reports would count from the whole timeline.
    assert final.waiting_seconds(life.now) == waited_by_the_timeline(final, life.now)
    if not ent.response_target(Severity.LOW).binding:  # Basic: best effort only
        assert not final.sla_breached
        assert not any(e.kind in ("sla_breached", "sla_warning") for e in final.events)
