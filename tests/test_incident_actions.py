"""The ticket side of a major incident (DESIGN.md §13), on the pure machine: link, the
incident's update as ConnectSoft's public comment, its resolution, unlink. Fast: no Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import ADMIN, SUPPORT, customer, opened_ticket, partner
from workflows import machine
from workflows import search_attributes as sa
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import Refusal, RefusalKind
from workflows.actions.incident import (
    APPLIED,
    INCIDENT_UPDATES_KEPT,
    IncidentResolve,
    IncidentUpdate,
    LinkIncident,
    UnlinkIncident,
)
from workflows.enums import Audience, ClockKind, ClockStatus, EventKind, OwningLine, TicketStatus
from workflows.incident_notices import Grouping, grouping_for
from workflows.models import Principal, TicketState

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
INC = "inc-7f3a"


def linked(customer_id: str, severity: int = 2, incident_id: str = INC) -> TicketState:
    state = machine.open_ticket(opened_ticket(customer_id, severity, NOW)).state
    return machine.apply(state, LinkIncident(actor=SUPPORT, incident_id=incident_id), NOW).state


def update(update_id: str = "u1", actor: Principal = SUPPORT) -> IncidentUpdate:
    return IncidentUpdate(actor=actor, incident_id=INC, update_id=update_id, message="Identity is degraded")


def test_linking_records_the_incident_in_the_tickets_history_and_search_attributes() -> None:
    state = linked("acme")
    assert state.incident_id == INC
    assert state.events[-1].kind == EventKind.INCIDENT_LINKED
    assert state.events[-1].detail["incident_id"] == INC
    assert sa.for_ticket(state).get(sa.INCIDENT_ID) == INC
    assert state.view().incident_id == state.row(NOW).incident_id == INC


def test_an_update_is_the_first_response_of_a_connectsoft_ticket_at_its_time() -> None:
    state = linked("globex", 2)
    at = NOW + timedelta(minutes=40)
    outcome = machine.apply(state, update(), at)
    after = outcome.state
    first = after.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and (first.status, first.stopped_at) == (ClockStatus.MET, at)
    assert (after.acknowledged_at, after.status) == (at, TicketStatus.ACKNOWLEDGED)
    comment = after.events[-1]
    assert comment.kind == EventKind.COMMENTED
    assert comment.detail | {"incident_id": INC, "update_id": "u1", "visibility": "public"} == comment.detail
    assert [n.audience for n in outcome.notifications] == [Audience.CUSTOMER]
    assert after.incident_updates == ["u1"]


def test_an_update_after_the_deadline_is_a_late_response_never_met() -> None:
    state = linked("globex", 2)
    late = NOW + timedelta(days=3)
    after = machine.apply(state, update(), late).state
    first = after.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.status == ClockStatus.BREACHED
    assert after.sla_breached and after.acknowledged_at == late


def test_the_same_update_id_twice_changes_nothing() -> None:
    state = machine.apply(linked("globex"), update(), NOW + timedelta(minutes=5)).state
    before = state.model_dump()
    with pytest.raises(Refusal) as refused:
        machine.apply(state, update(), NOW + timedelta(minutes=6))
    assert (refused.value.kind, refused.value.rule) == (RefusalKind.CONFLICT, APPLIED)
    assert state.model_dump() == before


def test_a_later_update_is_the_periodic_update_where_the_comment_rule_says_so() -> None:
    # Premium Sev 1: acknowledged, then the hourly customer update is due.
    state = linked("acme", 1)
    state = machine.apply(state, Acknowledge(actor=SUPPORT), NOW + timedelta(minutes=10)).state
    periodic = state.clock(ClockKind.PERIODIC_UPDATE)
    assert periodic is not None and periodic.is_live
    at = NOW + timedelta(minutes=50)
    after = machine.apply(state, update(), at).state
    updates = [c for c in after.clocks if c.kind == ClockKind.PERIODIC_UPDATE]
    assert (updates[-2].status, updates[-2].stopped_at) == (ClockStatus.MET, at)
    assert updates[-1].is_live and updates[-1].started_at == at


def test_on_a_partner_owned_ticket_an_update_is_a_notice_to_the_partner_not_its_response() -> None:
    state = linked("contoso", 2)
    assert state.owning_line == OwningLine.PARTNER
    for actor in (SUPPORT, ADMIN):
        outcome = machine.apply(state, update(actor=actor), NOW + timedelta(minutes=30))
        first = outcome.state.clock(ClockKind.FIRST_RESPONSE)
        assert first is not None and first.status == ClockStatus.RUNNING
        assert outcome.state.acknowledged_at is None
        assert [n.audience for n in outcome.notifications] == [Audience.PARTNER]
        assert outcome.state.events[-1].kind == EventKind.COMMENTED


def test_the_resolution_resolves_the_ticket_once_then_it_follows_its_own_rules() -> None:
    state = linked("globex")
    resolution = IncidentResolve(actor=SUPPORT, incident_id=INC, update_id="r1", resolution="IdP restored")
    after = machine.apply(state, resolution, NOW + timedelta(hours=1)).state
    assert after.status == TicketStatus.RESOLVED
    assert after.events[-1].kind == EventKind.RESOLVED and INC in after.events[-1].summary
    with pytest.raises(Refusal) as refused:
        machine.apply(after, resolution, NOW + timedelta(hours=2))
    assert refused.value.rule == APPLIED
    closed = machine.advance(after, NOW + timedelta(days=8)).state
    assert closed.status == TicketStatus.CLOSED


def test_unlinking_puts_the_ticket_back_on_its_own() -> None:
    state = linked("globex")
    after = machine.apply(state, UnlinkIncident(actor=SUPPORT, incident_id=INC), NOW).state
    assert after.incident_id is None and after.events[-1].kind == EventKind.INCIDENT_UNLINKED
    assert sa.for_ticket(after).get(sa.INCIDENT_ID) is None
    with pytest.raises(Refusal):
        machine.apply(after, update(), NOW + timedelta(minutes=1))


def test_after_unlinking_a_tickets_notices_go_out_on_their_own_again() -> None:
    """Issue 19: "Unlink, then the ticket is back on its own notices": its breach, while linked,
    names the incident and goes to the digest and the incident's page; unlinked first, the same
    breach names no incident and nothing of it is grouped."""
    first = linked("acme", 1).clock(ClockKind.FIRST_RESPONSE)
    assert first is not None
    while_linked = machine.advance(linked("acme", 1), first.due_at).notifications
    assert while_linked and all(n.incident_id == INC for n in while_linked)
    assert {grouping_for(n) for n in while_linked} >= {Grouping.DIGEST, Grouping.INCIDENT_PAGE}

    unlinked = machine.apply(linked("acme", 1), UnlinkIncident(actor=SUPPORT, incident_id=INC), NOW).state
    on_its_own = machine.advance(unlinked, first.due_at).notifications
    assert {(n.audience, n.page_action) for n in on_its_own} == {
        (n.audience, n.page_action) for n in while_linked
    }
    assert all(n.incident_id is None and grouping_for(n) is None for n in on_its_own)


def test_a_ticket_joins_one_incident_at_a_time() -> None:
    state = linked("globex")
    with pytest.raises(Refusal) as refused:
        machine.apply(state, LinkIncident(actor=SUPPORT, incident_id="inc-other"), NOW)
    assert "unlink it" in refused.value.message


@pytest.mark.parametrize("actor", [partner("northwind"), customer("contoso")], ids=["partner", "customer"])
def test_only_support_and_admins_take_an_incidents_actions(actor: Principal) -> None:
    state = machine.open_ticket(opened_ticket("contoso", 2, NOW)).state
    with pytest.raises(Refusal) as refused:
        machine.apply(state, LinkIncident(actor=actor, incident_id=INC), NOW)
    assert refused.value.kind == RefusalKind.FORBIDDEN


def test_a_ticket_remembers_a_bounded_number_of_update_ids() -> None:
    state = linked("globex")
    for number in range(INCIDENT_UPDATES_KEPT + 5):
        state = machine.apply(state, update(f"u{number}"), NOW + timedelta(minutes=number)).state
    assert len(state.incident_updates) == INCIDENT_UPDATES_KEPT
    assert state.incident_updates[-1] == f"u{INCIDENT_UPDATES_KEPT + 4}"


def test_an_update_counts_when_it_was_posted_if_the_ticket_recorded_nothing_since() -> None:
    """A fan-out reaches the last ticket a minute after the update was posted: the ticket takes
    it at the posting, as if it had arrived then (time comes first: nothing is rewritten)."""
    state = linked("globex", 2)
    posted = NOW + timedelta(minutes=40)
    on_time = update().model_copy(update={"posted_at": posted})
    after = machine.apply(state, on_time, posted + timedelta(seconds=55)).state
    first = after.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and (first.status, first.stopped_at) == (ClockStatus.MET, posted)
    assert after.events[-1].at == after.acknowledged_at == posted


def test_an_update_reaching_a_ticket_after_its_deadline_fired_is_late_whenever_it_was_posted() -> None:
    state = linked("acme", 1)  # Premium Sev 1: 1 h
    posted = NOW + timedelta(minutes=59)
    reached = NOW + timedelta(minutes=61)
    late = machine.apply(state, update().model_copy(update={"posted_at": posted}), reached).state
    first = late.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and first.status == ClockStatus.BREACHED
    assert late.events[-1].kind == EventKind.COMMENTED and late.events[-1].at == reached
    # The same, whether or not the ticket's own timer had fired before the update came.
    woke = machine.advance(state, reached).state
    assert machine.apply(woke, update().model_copy(update={"posted_at": posted}), reached).state == late
