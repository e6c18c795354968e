"""The `outage` action. Record a Sev 1's outage times, for the uptime report."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import Field

from workflows.actions.base import (
    CONFLICT,
    INVALID,
    ActionDefinition,
    ActionModel,
    FormField,
    Refusal,
    Widget,
    note_field,
    utc_time,
)
from workflows.enums import EventKind, Severity, TicketStatus
from workflows.models import TicketState
from workflows.outages import outage_times_problem
from workflows.permissions import Capability
from workflows.text import CleanText
from workflows.timeline import Step


class RecordOutage(ActionModel):
    """When the customer's service went down and, once known, came back (DESIGN.md §12)."""

    started_at: datetime
    ended_at: datetime | None = None
    note: CleanText | None = Field(default=None, max_length=10_000)


def check_outage(state: TicketState, action: RecordOutage) -> None:
    if state.status == TicketStatus.CLOSED:
        raise Refusal(CONFLICT, "The ticket is closed; file a new ticket instead.")
    if state.severity != Severity.CRITICAL:
        raise Refusal(
            INVALID,
            f"Only a Sev 1 records an outage; this ticket is Sev {int(state.severity)}. "
            "Change its severity first if the service is down.",
        )
    _check_outage_times(action.started_at, action.ended_at)


def _check_outage_times(started_at: datetime, ended_at: datetime | None) -> None:
    if started_at.tzinfo is None or (ended_at is not None and ended_at.tzinfo is None):
        raise Refusal(INVALID, "Give outage times with a UTC offset, e.g. 2026-11-27T09:30:00Z.")
    if ended_at is not None and ended_at < started_at:
        raise Refusal(INVALID, "The outage cannot end before it started; check ended_at.")


def _check_outage_window(state: TicketState, action: RecordOutage, now: datetime) -> None:
    """The bounds of workflows/outages.py, at the machine's now (issue 17 §1)."""
    problem = outage_times_problem(
        received_at=state.received_at, now=now, started_at=action.started_at, ended_at=action.ended_at
    )
    if problem is not None:
        raise Refusal(INVALID, f"{problem.field}: {problem.message.rstrip('.')} (rule {problem.rule}).")


def record_outage(step: Step, action: RecordOutage) -> None:
    state = step.state
    state.outage_started_at, state.outage_ended_at = action.started_at, action.ended_at
    until = f" until {action.ended_at:%Y-%m-%d %H:%M} UTC" if action.ended_at else ", still down"
    note = f": {action.note}" if action.note else ""
    step.record(
        EventKind.OUTAGE_RECORDED,
        f"Outage from {action.started_at:%Y-%m-%d %H:%M} UTC{until}{note}",
        actor=str(action.actor),
        started_at=action.started_at.isoformat(),
        ended_at=action.ended_at.isoformat() if action.ended_at else "",
    )


OUTAGE_FORM: Final = (
    FormField("started_at", "Outage began (UTC)", Widget.UTC_TIME, required=True, parse=utc_time),
    FormField("ended_at", "Outage ended (UTC, if it has)", Widget.UTC_TIME, parse=utc_time),
    *note_field(),
)

OUTAGE: Final = ActionDefinition(
    "outage",
    RecordOutage,
    Capability.OUTAGE,
    "Record when a Sev 1's outage began and, once known, ended, for the uptime report.",
    check_outage,
    record_outage,
    offered_when=lambda t: t.severity == Severity.CRITICAL,
    event=EventKind.OUTAGE_RECORDED,
    title="Record the outage",
    form=OUTAGE_FORM,
    check_at=_check_outage_window,
)
