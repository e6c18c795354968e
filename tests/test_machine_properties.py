"""Invariants of the pure ticket machine over random histories of actions and time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import DEMO_TERMS, opened_ticket
from workflows import machine, policy
from workflows.models import (
    Acknowledge,
    ChangeSeverity,
    Close,
    Comment,
    Escalate,
    EscalationTrigger,
    Handback,
    Handoff,
    HandoffCategory,
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
HUMAN_TRIGGERS = [t for t in EscalationTrigger if t not in policy.SYSTEM_TRIGGERS]

actions: st.SearchStrategy[TicketAction] = st.one_of(
    st.builds(Acknowledge, actor=st.just("a")),
    st.builds(Comment, actor=st.just("a"), body=st.just("b"), public=st.booleans()),
    st.builds(Escalate, actor=st.just("a"), level=st.integers(1, 4), trigger=st.sampled_from(HUMAN_TRIGGERS)),
    st.builds(Handoff, actor=st.just("p"), category=st.sampled_from(list(HandoffCategory))),
    st.builds(Handback, actor=st.just("c"), note=st.just("n")),
    st.builds(
        ChangeSeverity, actor=st.just("a"), severity=st.sampled_from(list(Severity)), reason=st.just("r")
    ),
    st.builds(WaitOnCustomer, actor=st.just("a")),
    st.builds(Resume, actor=st.just("a")),
    st.builds(Resolve, actor=st.just("a"), resolution=st.just("r")),
    st.builds(Reopen, actor=st.just("a"), reason=st.just("r")),
    st.builds(Close, actor=st.just("a")),
)
# Each step: wait some minutes (up to 3 days), then maybe act.
steps = st.lists(st.tuples(st.integers(0, 3 * 24 * 60), st.none() | actions), max_size=25)


def run(customer: str, severity: int, history: list[tuple[int, Any]]) -> list[TicketState]:
    """Every state the ticket passes through; refused actions are checked to change nothing."""
    state = machine.open_ticket(opened_ticket(customer, severity, START)).state
    states = [state]
    now = START
    for minutes, action in history:
        now += timedelta(minutes=minutes)
        state = machine.advance(state, now).state
        states.append(state)
        if action is None:
            continue
        before = state.model_dump()
        try:
            state = machine.apply(state, action, now).state
        except machine.Refusal as refusal:
            assert refusal.message.endswith("."), refusal.message  # a sentence a person can act on
            assert state.model_dump() == before
        states.append(state)
    return states


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    customer=st.sampled_from(sorted(DEMO_TERMS)),
    severity=st.integers(1, 4),
    history=steps,
)
def test_machine_invariants_hold_over_any_history(customer: str, severity: int, history: list[Any]) -> None:
    states = run(customer, severity, history)
    max_level = states[0].entitlement.max_level
    for earlier, later in itertools.pairwise(states):
        # The ladder only climbs, and never above the entitlement.
        assert earlier.level <= later.level <= max_level
        # Events are appended, never rewritten: the read model can key them by seq.
        assert later.events[: len(earlier.events)] == earlier.events
        # Once breached, a ticket stays breached; closed is final.
        assert later.sla_breached or not earlier.sla_breached
        if earlier.status == TicketStatus.CLOSED:
            assert later == earlier
    final = states[-1]
    assert [e.seq for e in final.events] == list(range(1, final.next_seq))
    for clock in final.clocks:
        assert clock.due_at >= clock.started_at
        if clock.warn_at is not None:
            assert clock.started_at <= clock.warn_at <= clock.due_at
    if not final.entitlement.response_target(Severity.LOW).binding:  # Basic: best effort only
        assert not final.sla_breached
        assert not any(e.kind in ("sla_breached", "sla_warning") for e in final.events)
