"""The read-model records in a ticket's history: what each `record_ticket` carried, and the
record each `notify_and_record` step carried beside its notices (issue 18)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

# The activities that write a ticket's record.
RECORDING = ("record_ticket", "notify_and_record")


def recording(event: HistoryEvent) -> bool:
    """Whether this event schedules an activity that writes the ticket's record."""
    return (
        event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name in RECORDING
    )


def record_of(event: HistoryEvent) -> dict[str, Any]:
    """The record a recording activity's scheduled event carries, as JSON."""
    attributes = event.activity_task_scheduled_event_attributes
    carried = json.loads(attributes.input.payloads[0].data)
    return carried["record"] if attributes.activity_type.name == "notify_and_record" else carried


def records(events: Iterable[HistoryEvent]) -> list[dict[str, Any]]:
    """Every record the history's activities carried, in order."""
    return [record_of(event) for event in events if recording(event)]
