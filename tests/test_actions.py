"""One definition per action (workflows/actions/): the update, its validator, the signal and
the HTTP route all come from it, so adding an action is one definition and its tests
(tests/test_action_end_to_end.py runs a new one through the whole stack)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import Field
from temporalio import workflow

from api.actions import ActionRoute, action_routes
from api.routers.tickets import action_router
from tests.factories import SUPPORT, customer, opened_ticket
from workflows import machine, ticket
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import ACTIONS, ActionDefinition, ActionModel, Refusal, RefusalKind
from workflows.actions.comment import Comment, visibility_of
from workflows.enums import EventKind, OwningLine, TicketStatus, Visibility
from workflows.models import TicketState, TicketView
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.ticket import TicketWorkflow
from workflows.timeline import Step

# DESIGN.md §8: the update names are a fixed interface; each is also `<name>-signal`.
UPDATES = [
    "acknowledge",
    "comment",
    "escalate",
    "handoff",
    "handback",
    "change-severity",
    "wait-on-customer",
    "resume",
    "resolve",
    "reopen",
    "close",
    "outage",
]
# Issue 19 (DESIGN.md §13): an incident's actions on its tickets. The workflow takes them as
# updates and signals; the API takes them through /incidents only, never /tickets/{id}/<name>.
INCIDENT_UPDATES = ["link-incident", "unlink-incident", "incident-update", "incident-resolve"]
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_every_update_name_of_the_interface_is_one_definition() -> None:
    assert [definition.update for definition in ACTIONS] == UPDATES + INCIDENT_UPDATES
    assert [definition.update for definition in ACTIONS if definition.routed] == UPDATES
    assert len({definition.model for definition in ACTIONS}) == len(ACTIONS)


def test_the_workflow_has_an_update_with_a_validator_and_a_signal_per_definition() -> None:
    defn = workflow._Definition.must_from_class(TicketWorkflow)
    assert set(defn.updates) == set(UPDATES + INCIDENT_UPDATES)
    assert set(defn.signals) == {f"{name}-signal" for name in UPDATES + INCIDENT_UPDATES}
    assert set(defn.queries) == {"state"}
    for definition in ACTIONS:
        update = defn.updates[definition.update]
        assert update.validator is not None
        assert (update.arg_types, update.ret_type) == ([definition.model], TicketView)
        assert update.description == definition.summary
        assert defn.signals[definition.signal].arg_types == [definition.model]
        # The methods keep their names, for callers that pass them to execute_update/signal.
        assert getattr(TicketWorkflow, definition.method)._defn is update
        assert (
            getattr(TicketWorkflow, f"{definition.method}_signal").__name__ == f"{definition.method}_signal"
        )


def test_the_api_routes_come_from_the_same_definitions() -> None:
    assert [(r.update, r.model, r.summary) for r in action_routes()] == [
        (d.update, d.model, d.summary) for d in ACTIONS if d.routed
    ]
    paths = {getattr(route, "path", "") for route in action_router().routes}
    assert {f"/tickets/{{ticket_id}}/{name}" for name in UPDATES} <= paths
    assert not {f"/tickets/{{ticket_id}}/{name}" for name in INCIDENT_UPDATES} & paths
    for route in action_routes():
        assert "actor" not in route.body.model_fields
        assert set(route.body.model_fields) == set(route.model.model_fields) - {"actor"}


def test_event_kinds_are_an_enum_with_the_values_the_timeline_always_had() -> None:
    assert {kind.value for kind in EventKind} == {
        "opened",
        "critical_incident",
        "acknowledged",
        "commented",
        "escalated",
        "handed_off",
        "handed_back",
        "severity_changed",
        "waiting_on_customer",
        "resumed",
        "resolved",
        "reopened",
        "closed",
        "sla_warning",
        "sla_breached",
        "update_overdue",
        # Issue 8: a Sev 1's outage times, for the uptime report.
        "outage_recorded",
        # Issue 19: a ticket linked to a major incident, and unlinked.
        "incident_linked",
        "incident_unlinked",
    }


# --- A new action, as someone adding one would write it ------------------------------------------


class Nudge(ActionModel):
    note: CleanText = Field(min_length=1, max_length=200)


def check_nudge(state: TicketState, action: Nudge) -> None:
    if state.status != TicketStatus.OPEN:
        raise Refusal(RefusalKind.CONFLICT, "Only an unanswered ticket needs a nudge.")


def nudge(step: Step, action: Nudge) -> None:
    step.record(EventKind.COMMENTED, f"Nudged: {action.note}", actor=str(action.actor), visibility="public")


NUDGE = ActionDefinition(
    "nudge",
    Nudge,
    Capability.COMMENT,
    "Remind the owning line.",
    check_nudge,
    nudge,
    offered_when=lambda state: state.status == TicketStatus.OPEN,
    event=EventKind.COMMENTED,
)


def test_a_new_action_is_one_definition() -> None:
    with ACTIONS.registered(NUDGE):
        the_machine_and_the_handlers_take_a_nudge()
    assert ACTIONS.get("nudge") is None


def the_machine_and_the_handlers_take_a_nudge() -> None:
    state = machine.open_ticket(opened_ticket("globex", 3, NOW)).state

    # The machine checks and applies it, permission table first.
    nudged = machine.apply(state, Nudge(actor=customer("globex"), note="any news?"), NOW + timedelta(hours=1))
    assert nudged.state.events[-1].summary == "Nudged: any news?"
    assert nudged.state.events[-1].kind == NUDGE.event
    assert NUDGE.offered_when(state) and not NUDGE.offered_when(
        machine.apply(state, Acknowledge(actor=SUPPORT), NOW).state
    )
    with pytest.raises(Refusal) as refused:
        machine.apply(state, Nudge(actor=customer("acme"), note="hello"), NOW)
    assert refused.value.kind == RefusalKind.NOT_FOUND
    acknowledged = machine.apply(state, Acknowledge(actor=SUPPORT), NOW).state
    with pytest.raises(Refusal, match="unanswered"):
        machine.validate(acknowledged, Nudge(actor=SUPPORT, note="?"), NOW)

    # The workflow's update (validated) and signal, and the API's route, come from it.
    update = ticket._update(NUDGE)._defn  # type: ignore[attr-defined]
    assert (update.name, update.arg_types, update.ret_type) == ("nudge", [Nudge], TicketView)
    assert update.validator is not None
    assert ticket._signal(NUDGE).__temporal_signal_definition.name == "nudge-signal"  # type: ignore[attr-defined]
    route = ActionRoute.of(NUDGE)
    assert (route.update, route.summary) == ("nudge", "Remind the owning line.")
    assert set(route.body.model_fields) == {"note"}
    assert route.action(route.body(note="any news?"), SUPPORT) == Nudge(actor=SUPPORT, note="any news?")


def test_line_names_and_note_visibility_are_one_enum_each() -> None:
    # One table of line names (workflows/enums.py), for the console, sentences and refusals.
    assert [(line.label, line.in_sentence, line.subject) for line in OwningLine] == [
        ("ConnectSoft", "ConnectSoft", "ConnectSoft"),
        ("Partner", "the partner's first line", "The partner's first line"),
    ]
    # The visibility of a comment's event keeps the strings DESIGN.md §8 fixes.
    assert [v.value for v in Visibility] == ["public", "internal", "partner_internal"]
    assert visibility_of(Comment(actor=SUPPORT, body="x", public=False)) == Visibility.INTERNAL
