"""Invariants of the pure ticket machine over random histories of actions and time."""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from annotated_types import Ge, Le
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo

from tests.factories import ADMIN, DEMO_TERMS, SUPPORT, customer, engineer, opened_ticket, partner
from workflows import machine
from workflows.actions.base import ACTIONS, ActionDefinition, ActionModel, Refusal, check
from workflows.enums import (
    Audience,
    ClockKind,
    ClockStatus,
    EscalationTrigger,
    OwningLine,
    ProductType,
    Severity,
    TicketStatus,
)
from workflows.models import SYSTEM, Notification, TicketState

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
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


def field_values(annotation: Any, info: FieldInfo) -> st.SearchStrategy[Any]:
    """Values for one field of an action's body, from its type: words for text, the bounds
    of a number, every member of an enum, instants around the ticket's life."""
    if get_origin(annotation) is Annotated:
        return field_values(get_args(annotation)[0], info)
    if get_origin(annotation) in (Union, types.UnionType):
        parts = [part for part in get_args(annotation) if part is not type(None)]
        return st.none() | st.one_of(*(field_values(part, info) for part in parts))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = next((m.ge for m in info.metadata if isinstance(m, Ge)), -1)
        high = next((m.le for m in info.metadata if isinstance(m, Le)), 10)
        return st.integers(int(low), int(high))  # type: ignore[call-overload]
    if annotation in (datetime, AwareDatetime):
        span = st.datetimes(
            START.replace(tzinfo=None) - timedelta(days=40), START.replace(tzinfo=None) + timedelta(days=20)
        )
        return span.map(lambda at: at.replace(tzinfo=UTC))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if annotation is str:
        return st.sampled_from(["b", "duplicate"])
    raise AssertionError(f"no strategy for {annotation!r}: teach field_values this type")


def bodies(definition: ActionDefinition[Any]) -> st.SearchStrategy[ActionModel]:
    """Every action of the action list, with any body its model allows."""
    fields = {
        name: field_values(info.annotation, info)
        for name, info in definition.model.model_fields.items()
        if name != "actor"
    }
    return st.builds(definition.model, actor=actors, **fields)


# Drawn from the action list itself, so a new action is covered as soon as it is defined.
actions: st.SearchStrategy[ActionModel] = st.one_of(*(bodies(definition) for definition in ACTIONS))
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
        except Refusal as refusal:
            assert refusal.message.endswith("."), refusal.message  # a sentence a person can act on
            assert state.model_dump() == before
            with pytest.raises(Refusal) as refused_late:
                machine.apply(late, action, now)
            assert refused_late.value.kind == refusal.kind
            with pytest.raises(Refusal):
                machine.validate(late, action, now)
            continue
        machine.validate(late, action, now)
        assert machine.apply(late, action, now).state == outcome.state
        # The action recorded the event its definition names.
        recorded = outcome.state.events[len(state.events) :]
        assert ACTIONS.of(action).event in {event.kind for event in recorded}
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


@pytest.mark.parametrize("definition", ACTIONS, ids=[definition.update for definition in ACTIONS])
def test_the_random_histories_draw_every_action_of_the_list(definition: ActionDefinition[Any]) -> None:
    drawn = find(actions, lambda action: isinstance(action, definition.model))
    assert definition.model.model_validate(drawn.model_dump()) == drawn


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    customer_id=st.sampled_from(sorted(DEMO_TERMS)),
    severity=st.integers(1, 4),
    history=steps,
    action=actions,
)
def test_an_action_not_offered_for_a_state_is_refused_in_it(
    customer_id: str, severity: int, history: list[Any], action: ActionModel
) -> None:
    """The console offers a form only when the definition's state-only precondition holds;
    where it does not, `check` refuses it whatever its body, and for every action of the list
    in the action's own words (not the registry's fallback for a check that says nothing)."""
    definition = ACTIONS.of(action)
    for state in run(customer_id, severity, history).states:
        if not definition.offered_when(state):
            with pytest.raises(Refusal) as refused:
                check(state, action)
            assert "it cannot take" not in refused.value.message
