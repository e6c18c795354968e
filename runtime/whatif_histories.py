"""Recorded tickets from Temporal histories (`escalator whatif --from-histories`, issue 20).

A ticket's history holds all a simulation needs, exactly: the `TicketOpened` input (its
pinned entitlement and holidays), every accepted update and every signal with its body, and
the time the workflow saw each (`workflow.now()` is the start time of the workflow task that
ran it). The read model keeps none of the bodies, so the histories are the source
(workflows/whatif.py says what is done with them).

A workflow that continued as new is one ticket: its runs' histories, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec

from workflows.actions.base import ACTIONS, ActionDefinition
from workflows.models import Notification, TicketEvent, TicketOpened, TicketRecord, TicketState, TicketStep
from workflows.whatif import RecordedAction, RecordedTicket


def _by_signal(name: str) -> ActionDefinition[Any] | None:
    return ACTIONS.get(name.removesuffix("-signal")) if name.endswith("-signal") else None


_CONVERTER = pydantic_data_converter.payload_converter


def _decode(payloads: Payloads, kind: type[Any]) -> Any:
    return _CONVERTER.from_payloads(list(payloads.payloads), [kind])[0]


def _time(event: Any) -> datetime:
    # As the SDK makes workflow.now() of a task's start: nanoseconds through a float.
    return datetime.fromtimestamp(event.event_time.ToNanoseconds() / 1e9, UTC)


def _actions(history: WorkflowHistory) -> tuple[list[RecordedAction], list[datetime], datetime]:
    """Every update accepted and every signal received, at the time the workflow ran it; the
    times the workflow woke (each workflow task's `now`); and the history's last instant."""
    found: list[RecordedAction] = []
    ticks: list[datetime] = []
    task_at: datetime | None = None
    pending_signals: list[Any] = []
    last = None
    for event in history.events:
        at = _time(event)
        last = at
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_at = at
            ticks.append(at)
            # A signal is delivered to the next workflow task.
            for attrs in pending_signals:
                definition = _by_signal(attrs.signal_name)
                assert definition is not None
                found.append(RecordedAction(at, _decode(attrs.input, definition.model), signal=True))
            pending_signals = []
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            if _by_signal(attrs.signal_name) is not None:
                pending_signals.append(attrs)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            definition = ACTIONS.get(request.input.name)
            assert definition is not None
            assert task_at is not None
            found.append(RecordedAction(task_at, _decode(request.input.args, definition.model)))
    assert last is not None
    return found, ticks, last


async def decode_history(history: WorkflowHistory, codec: PayloadCodec | None) -> WorkflowHistory:
    """The history with the payloads read here (the opening, updates, signals, records and the
    result) decoded by `codec`: with encrypted history (runtime/codec.py) they are ciphertext."""
    if codec is None:
        return history
    for event in history.events:
        for payloads in payloads_of(event):
            decoded = await codec.decode(list(payloads.payloads))
            del payloads.payloads[:]
            payloads.payloads.extend(decoded)
    return history


def payloads_of(event: Any) -> list[Payloads]:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return [event.workflow_execution_started_event_attributes.input]
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        return [event.workflow_execution_signaled_event_attributes.input]
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return [event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args]
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return [event.activity_task_scheduled_event_attributes.input]
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return [event.workflow_execution_completed_event_attributes.result]
    return []


def opened_of(history: WorkflowHistory) -> TicketOpened:
    first = history.events[0]
    assert first.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    opened: TicketOpened = _decode(first.workflow_execution_started_event_attributes.input, TicketOpened)
    return opened


def recorded_ticket(runs: Sequence[WorkflowHistory]) -> RecordedTicket:
    """One ticket from the histories of its runs, first to last."""
    opened = opened_of(runs[0])
    actions: list[RecordedAction] = []
    ticks: list[datetime] = []
    until = opened.received_at
    for history in runs:
        found, woke, until = _actions(history)
        actions += found
        ticks += woke
    return RecordedTicket(opened=opened, actions=tuple(actions), until=until, ticks=tuple(ticks))


def recorded_events(runs: Sequence[WorkflowHistory]) -> list[TicketEvent]:
    """The events the workflow recorded in the read model (its records' inputs)."""
    return [event for record in _records(runs) for event in record.events]


def _records(runs: Sequence[WorkflowHistory]) -> list[TicketRecord]:
    records = []
    for history in runs:
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                continue
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "record_ticket":
                records.append(_decode(attrs.input, TicketRecord))
            elif attrs.activity_type.name == "notify_and_record":  # a step: its notices, then its record
                step: TicketStep = _decode(attrs.input, TicketStep)
                records.append(step.record)
    return records


def final_state(runs: Sequence[WorkflowHistory]) -> TicketState | None:
    """The state the workflow ended with (its result), if its last run completed."""
    last = runs[-1].events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    state: TicketState = _decode(last.workflow_execution_completed_event_attributes.result, TicketState)
    return state


def recorded_notifications(runs: Sequence[WorkflowHistory]) -> list[Notification]:
    """The notices the workflow recorded in the outbox (its records' inputs)."""
    return [notice for record in _records(runs) for notice in record.notifications]
