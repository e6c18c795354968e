"""Two permission rulings of DESIGN.md §5, §6 and §11 (issue 17 §8), in the pure machine.

- A support engineer escalates at most one level above its own; the
  `critical_production_incident` trigger may go straight to any entitled level; admins may
  escalate to any entitled level.
- While ConnectSoft owns a partner ticket, the partner may comment, raise the severity, and
  close it with a reason; lowering the severity and resolving are ConnectSoft's.

Both came with policy 2026.12-1. A ticket that pinned 2026.11-2 keeps that version's table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import ADMIN, customer, engineer, opened_ticket, partner
from workflows import machine, policy
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import Refusal, RefusalKind
from workflows.actions.change_severity import ChangeSeverity
from workflows.actions.close import Close
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.actions.handback import Handback
from workflows.actions.handoff import Handoff
from workflows.actions.resolve import Resolve
from workflows.enums import EscalationTrigger, HandoffCategory, OwningLine, Role, Severity
from workflows.models import Principal, TicketOpened, TicketState
from workflows.permissions import Capability, Grant, TicketScope, can_reach

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
SOON = START + timedelta(minutes=5)
NORTHWIND = partner("northwind")


def under(version: str, opened: TicketOpened) -> TicketOpened:
    ent = opened.entitlement.model_copy(
        update={"policy_version": version, "policy_fingerprint": policy.fingerprint_of(version)}
    )
    return opened.model_copy(update={"entitlement": ent})


def acme(version: str = policy.POLICY_VERSION, severity: int = 3) -> TicketState:
    return machine.open_ticket(under(version, opened_ticket("acme", severity, START))).state


def refusal(state: TicketState, action: object) -> Refusal:
    with pytest.raises(Refusal) as refused:
        machine.apply(state, action, SOON)  # type: ignore[arg-type]
    return refused.value


def test_the_current_version_carries_the_rulings() -> None:
    rules = policy.current()
    assert rules.permissions[Capability.ESCALATE][Role.SUPPORT] == Grant.ONE_LEVEL_ABOVE_OWN
    assert EscalationTrigger.CRITICAL_PRODUCTION_INCIDENT in rules.escalate_any_level_triggers


@pytest.mark.parametrize(
    ("level", "target", "trigger", "allowed"),
    [
        (1, 2, EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE, True),
        (1, 3, EscalationTrigger.REQUIRES_ENGINEERING, False),
        (1, 4, EscalationTrigger.BUSINESS_CRITICAL_PROBLEM, False),
        (1, 4, EscalationTrigger.CRITICAL_PRODUCTION_INCIDENT, True),
        (2, 3, EscalationTrigger.REQUIRES_ENGINEERING, True),
        (2, 4, EscalationTrigger.STRATEGIC_ISSUE, False),
        (3, 4, EscalationTrigger.STRATEGIC_ISSUE, True),
    ],
)
def test_support_escalates_at_most_one_level_above_its_own(
    level: int, target: int, trigger: EscalationTrigger, allowed: bool
) -> None:
    state = acme()
    action = Escalate(actor=engineer(level), level=target, trigger=trigger)
    if allowed:
        assert machine.apply(state, action, SOON).state.level == target
    else:
        refused = refusal(state, action)
        assert refused.kind == RefusalKind.FORBIDDEN
        assert f"A Level {level} engineer escalates at most to L{level + 1}" in refused.message
        assert "critical_production_incident" in refused.message


def test_admins_escalate_to_any_entitled_level() -> None:
    action = Escalate(actor=ADMIN, level=4, trigger=EscalationTrigger.BUSINESS_CRITICAL_PROBLEM)
    assert machine.apply(acme(), action, SOON).state.level == 4


def test_a_ticket_pinned_to_the_old_version_keeps_its_table() -> None:
    action = Escalate(actor=engineer(1), level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING)
    assert machine.apply(acme("2026.11-2"), action, SOON).state.level == 3
    partner_owned = handed_off("2026.11-2")
    lower = ChangeSeverity(actor=NORTHWIND, severity=Severity.LOW, reason="less urgent")
    assert machine.apply(partner_owned, lower, SOON).state.severity == Severity.LOW
    assert machine.apply(partner_owned, Resolve(actor=NORTHWIND, resolution="done"), SOON).state.resolved_at


def handed_off(version: str = policy.POLICY_VERSION) -> TicketState:
    state = machine.open_ticket(under(version, opened_ticket("contoso", 2, START))).state
    handoff = Handoff(actor=NORTHWIND, category=HandoffCategory.PLATFORM_BUG)
    state = machine.apply(state, handoff, START + timedelta(minutes=1)).state
    assert state.owning_line == OwningLine.CONNECTSOFT
    return state


def test_while_connectsoft_owns_the_partner_comments_raises_and_closes_with_a_reason() -> None:
    state = handed_off()
    assert machine.apply(state, Comment(actor=NORTHWIND, body="Customer asks for news"), SOON).state
    raised = machine.apply(
        state, ChangeSeverity(actor=NORTHWIND, severity=Severity.CRITICAL, reason="down"), SOON
    )
    assert raised.state.severity == Severity.CRITICAL
    closed = machine.apply(state, Close(actor=NORTHWIND, note="The customer withdrew it"), SOON)
    assert closed.state.closed_at == SOON
    bare = refusal(state, Close(actor=NORTHWIND))
    assert bare.kind == RefusalKind.FORBIDDEN and "give the reason" in bare.message


def test_while_connectsoft_owns_lowering_and_resolving_are_connectsofts() -> None:
    state = handed_off()
    lower = ChangeSeverity(actor=NORTHWIND, severity=Severity.LOW, reason="less urgent")
    lowered = refusal(state, lower)
    assert lowered.kind == RefusalKind.FORBIDDEN and "only raise" in lowered.message
    resolved = refusal(state, Resolve(actor=NORTHWIND, resolution="done"))
    assert resolved.kind == RefusalKind.FORBIDDEN and "hands it back" in resolved.message
    # ConnectSoft may do both.
    assert (
        machine.apply(state, lower.model_copy(update={"actor": ADMIN}), SOON).state.severity == Severity.LOW
    )
    assert machine.apply(state, Resolve(actor=ADMIN, resolution="done"), SOON).state.resolved_at == SOON


def test_once_handed_back_the_partner_lowers_and_resolves_again() -> None:
    state = machine.apply(handed_off(), Handback(actor=ADMIN, note="patched"), SOON).state
    state = machine.apply(state, Acknowledge(actor=NORTHWIND), SOON).state
    later = SOON + timedelta(minutes=1)
    lower = ChangeSeverity(actor=NORTHWIND, severity=Severity.LOW, reason="less urgent")
    assert machine.apply(state, lower, later).state.severity == Severity.LOW
    assert machine.apply(state, Resolve(actor=NORTHWIND, resolution="done"), later).state.resolved_at == later
    assert machine.apply(state, Close(actor=NORTHWIND), later).state.closed_at == later


TICKETS = {"acme": ("acme", None), "globex": ("globex", "northwind"), "initech": ("initech", "contoso")}


@pytest.mark.parametrize(
    ("principal", "scope", "reached"),
    [
        (ADMIN, TicketScope(), {"acme", "globex", "initech"}),
        (engineer(1), TicketScope(), {"acme", "globex", "initech"}),
        (NORTHWIND, TicketScope(partner_id="northwind"), {"globex"}),
        (customer("acme"), TicketScope(customer_id="acme"), {"acme"}),
    ],
)
def test_reach_is_one_scope_for_lists_and_single_tickets(
    principal: Principal, scope: TicketScope, reached: set[str]
) -> None:
    # The scope the read-model queries filter by (store/scope.py) is the one `can_reach` judges
    # a single ticket by.
    rules = policy.current()
    assert TicketScope.of(rules, principal) == scope
    for name, (customer_id, partner_id) in TICKETS.items():
        assert scope.admits(customer_id=customer_id, partner_id=partner_id) == (name in reached)
        assert can_reach(rules, principal, customer_id=customer_id, partner_id=partner_id) == (
            name in reached
        )
    assert not TicketScope(nothing=True).admits(customer_id="acme", partner_id=None)
