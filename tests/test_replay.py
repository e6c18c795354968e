"""Committed histories replay under today's code: a failure here is a non-determinism bug.

tests/histories/record.py records one history per path of a ticket's life (`make histories`,
never `make test`). These tests replay every committed one with `Replayer`, and check that the
paths issue 7 names and every scenario the recorder defines have their committed histories.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.histories.record import SCENARIOS
from worker.worker import TICKET_WORKFLOWS
from workflows.incident import PAGE_ACKNOWLEDGE_PATCH
from workflows.ticket import DELIVERY_PATCH, QUARANTINE_PATCH, STEP_PATCH

HISTORY_DIR = Path(__file__).parent / "histories"
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))
# Recorded before tickets delivered their notices (the `deliver-notifications` patch): kept as
# recorded, they prove a ticket started then still replays, and takes the old branch.
BEFORE_DELIVERY = sorted((HISTORY_DIR / "before_delivery").glob("*.json"))
# Recorded before a step's notices and record went in one activity (the `notify-and-record`
# patch): kept as recorded, they prove a ticket started then replays on the separate activities.
BEFORE_STEP = sorted((HISTORY_DIR / "before_step").glob("*.json"))
RECORD = "record it with: make histories"

# Every path of a ticket's life that CI replays (issue 7, "Replay across every path"), and
# the recorder's scenario that covers it.
REQUIRED_PATHS = {
    "breach and auto-escalation": "breach_auto_escalation",
    "manual escalation": "manual_escalation",
    "the acknowledgement ladder": "acknowledgement_ladder",
    "partner handoff and handback": "partner_handoff_handback",
    "wait-on-customer and resume": "wait_on_customer_resume",
    "reopen": "reopen",
    "auto-close": "auto_close",
    "continue-as-new": "continue_as_new",
    "signals, and a refused signal ignored": "signals",
    "an outage recorded, then ended": "outage",
    "a read-model write refused on its data and quarantined": "record_quarantined",
    # Issue 19: a ticket's incident path, and the incident's own workflow.
    "an incident's link, update, unlink and resolution on a ticket": "incident_ticket",
    "an incident's fan-out, rule sweep and resolution": "incident_workflow",
    "an incident's continue-as-new": "incident_continue_as_new",
    "an incident's page acknowledged once, then resolved with it": "incident_page",
    # Issue 18: the options event a person's first action writes (api/priority.py).
    "a ticket raised to a person's priority": "person_priority",
}


def load(path: Path) -> WorkflowHistory:
    # The workflow id only labels the replay; the file name stands in for it.
    return WorkflowHistory.from_json(f"ticket-{path.stem}", path.read_text())


@pytest.mark.parametrize("path", REQUIRED_PATHS)
def test_every_path_has_a_scenario_in_the_recorder(path: str) -> None:
    assert REQUIRED_PATHS[path] in SCENARIOS, f"no scenario records {path!r}"


def test_every_scenario_has_its_committed_histories() -> None:
    missing = [
        file for each in SCENARIOS.values() for file in each.files if not (HISTORY_DIR / file).exists()
    ]
    assert not missing, f"no committed history {missing}: {RECORD}"


def test_every_committed_history_belongs_to_a_scenario() -> None:
    recorded = {file for each in SCENARIOS.values() for file in each.files}
    stale = [path.name for path in HISTORIES if path.name not in recorded]
    assert not stale, f"no scenario records {stale}: {RECORD} (it drops them)"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history_is_whole(path: Path) -> None:
    """A history that was cut short would replay, and prove less than it claims."""
    events = load(path).events
    assert events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert events[-1].event_type in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    )


def test_the_continue_as_new_histories_are_one_run_then_the_next() -> None:
    scenario = SCENARIOS["continue_as_new"]
    assert len(scenario.files) >= 2, "both runs are kept and replayed"
    runs = [load(HISTORY_DIR / file).events for file in scenario.files]
    for before, after in itertools.pairwise(runs):
        assert before[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        new_run = before[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        started = after[0].workflow_execution_started_event_attributes
        assert started.original_execution_run_id == new_run
    assert runs[-1][-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


def markers(history: WorkflowHistory) -> set[str]:
    found = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                found.add(json.loads(details["patch-data"].payloads[0].data)["id"])
    return found


def activities_run(history: WorkflowHistory) -> set[str]:
    return {
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def workflow_type(history: WorkflowHistory) -> str:
    return str(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)


# A ticket's histories; an incident's workflow sends no notices of its own.
TICKET_HISTORIES = [path for path in HISTORIES if workflow_type(load(path)) == "TicketWorkflow"]


def test_the_incident_histories_are_the_incidents() -> None:
    history = load(HISTORY_DIR / "incident_workflow.json")
    assert {"fan_out_incident_update", "link_incident_tickets"} <= activities_run(history)
    incidents = [
        file
        for name in ("incident_workflow", "incident_continue_as_new", "incident_page")
        for file in SCENARIOS[name].files
    ]
    assert {path.name for path in set(HISTORIES) - set(TICKET_HISTORIES)} == set(incidents)
    assert {workflow_type(load(HISTORY_DIR / file)) for file in incidents} == {"IncidentWorkflow"}
    runs = [load(HISTORY_DIR / file).events for file in SCENARIOS["incident_continue_as_new"].files]
    assert runs[0][-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


@pytest.mark.parametrize("path", TICKET_HISTORIES, ids=[p.stem for p in TICKET_HISTORIES])
def test_new_histories_send_and_record_each_step_in_one_activity(path: Path) -> None:
    history = load(path)
    assert {DELIVERY_PATCH, STEP_PATCH} <= markers(history)
    assert "notify_and_record" in activities_run(history)


def test_a_step_takes_every_notice_and_record_of_an_intake_in_one_activity() -> None:
    """A Premium Sev 1 intake raises a page and notices to four audiences: before the step,
    an activity each beside the record; now one activity sends them all, then records."""
    before = scheduled_activities(load(HISTORY_DIR / "before_step" / "critical_incident.json"))
    now = scheduled_activities(load(HISTORY_DIR / "critical_incident.json"))
    first_step = now.index("notify_and_record")
    assert before[: before.index("record_ticket") + 1].count("deliver_notification") >= 3
    assert "deliver_notification" not in now[:first_step] and "record_ticket" not in now[:first_step]
    assert len(now) < len(before)


@pytest.mark.parametrize("path", BEFORE_STEP, ids=[p.stem for p in BEFORE_STEP])
async def test_tickets_started_before_the_step_replay_on_the_separate_activities(path: Path) -> None:
    history = load(path)
    assert STEP_PATCH not in markers(history)
    assert "notify_and_record" not in activities_run(history)
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def scheduled_activities(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


@pytest.mark.parametrize("path", BEFORE_DELIVERY, ids=[p.stem for p in BEFORE_DELIVERY])
async def test_tickets_started_before_delivery_replay_and_only_queue_their_notices(path: Path) -> None:
    history = load(path)
    assert DELIVERY_PATCH not in markers(history)
    assert "deliver_notification" not in activities_run(history)
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_under_current_code(path: Path) -> None:
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_the_quarantine_history_sets_the_refused_record_aside_on_the_patched_branch() -> None:
    history = load(HISTORY_DIR / "record_quarantined.json")
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    assert QUARANTINE_PATCH in markers(history)
    assert [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type for e in failed
    ] == ["RecordQuarantined"]
    # Every other history predates the quarantine: none takes its branch.
    assert not any(
        QUARANTINE_PATCH in markers(load(path)) for path in HISTORIES if path.stem != "record_quarantined"
    )


def test_the_incident_page_history_acknowledges_on_the_patched_branch_and_the_older_ones_never_did() -> None:
    page = load(HISTORY_DIR / "incident_page.json")
    assert PAGE_ACKNOWLEDGE_PATCH in markers(page)
    assert "settle_incident_page" in activities_run(page)
    for name in ("incident_workflow", "incident_continue_as_new"):
        for file in SCENARIOS[name].files:
            assert PAGE_ACKNOWLEDGE_PATCH not in markers(load(HISTORY_DIR / file))
