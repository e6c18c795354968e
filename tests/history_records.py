"""The read-model records in a ticket's history: what each `record_ticket` carried, and the
record each `notify_and_record` step carried beside its notices (issue 18).

A step run as a local activity (the `local-step` patch) leaves a marker with its outcome, not
its input: its record is not in the history, and `RecordCapture` takes it as the workflow
asks for it instead."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

# The activities that write a ticket's record.
RECORDING = ("record_ticket", "notify_and_record")
# The SDK core's marker for a local activity's outcome.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def local_activity(event: HistoryEvent) -> str | None:
    """The activity type whose local run this event's marker records, or None."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    data = json.loads(attributes.details["data"].payloads[0].data)
    return str(data["activity_type"])


def local_step(event: HistoryEvent) -> bool:
    """Whether this event records a `notify_and_record` step run as a local activity."""
    return local_activity(event) == "notify_and_record"


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


class RecordCapture(Interceptor):
    """Takes each record a ticket asks to write, by workflow id, as the JSON it carries: a
    `record_ticket`'s, or a step's (an activity or a local one). Replays take nothing."""

    def __init__(self) -> None:
        self.records: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        capture = self

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_CapturingOutbound(outbound, capture))

        return Inbound

    def take(self, activity: str, args: Sequence[Any]) -> None:
        if activity not in RECORDING or workflow.unsafe.is_replaying():
            return
        (carried,) = args
        record = carried.record if activity == "notify_and_record" else carried
        # At once: the record shares its clocks with the state, which changes on.
        data = pydantic_data_converter.payload_converter.to_payloads([record])[0].data
        self.records[workflow.info().workflow_id].append(json.loads(data))


class _CapturingOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, capture: RecordCapture) -> None:
        super().__init__(next)
        self._capture = capture

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        self._capture.take(input.activity, input.args)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        self._capture.take(input.activity, input.args)
        return super().start_local_activity(input)
