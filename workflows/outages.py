"""The bounds on outage times a client sends (DESIGN.md §12), at intake and in the `outage` action,
and an incident's own outage times (DESIGN.md §13: given when it is opened and resolved).

Pure: no Temporal, no I/O, no clock of its own. `now` is the caller's: the time intake received
the ticket, or the machine's now (`workflow.now()` in the workflow's update validator).

An outage begins no earlier than `OUTAGE_LOOKBACK` before the ticket was received and never
after now; it ends after it began and never after now, so it lasts at most the time since it
began. Only comparisons, never arithmetic, touch a client's times: a time such as
`0001-01-01T00:00:00+14:00` compares fine but has no UTC equivalent, and is refused here
rather than by the read model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

OUTAGE_LOOKBACK: Final = timedelta(days=30)


@dataclass(frozen=True)
class OutageTimesProblem:
    """Why a client's outage times are refused: the field, the rule and a sentence."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _at(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S%z}"


def outage_times_problem(
    *,
    received_at: datetime,
    now: datetime,
    started_at: datetime,
    ended_at: datetime | None,
    started_field: str = "started_at",
    ended_field: str = "ended_at",
    since: str = "the ticket was received",
) -> OutageTimesProblem | None:
    """The first bound `started_at`/`ended_at` break, or None when they are within bounds.

    Every time must carry a UTC offset; the field names are the caller's (intake's
    `outage_started_at`, the action's `started_at`). `received_at` is when the ticket was
    received, or when the incident was opened (`since` says which).
    """
    if started_at.tzinfo is None or (ended_at is not None and ended_at.tzinfo is None):
        field = started_field if started_at.tzinfo is None else ended_field
        return OutageTimesProblem(
            field, "outage_times", "give outage times with a UTC offset, e.g. 2026-11-27T09:30:00Z."
        )
    if ended_at is not None and ended_at < started_at:
        return OutageTimesProblem(ended_field, "outage_times", "the outage cannot end before it began.")
    earliest = received_at - OUTAGE_LOOKBACK
    if started_at < earliest:
        return OutageTimesProblem(
            started_field,
            "outage_window",
            f"an outage begins no earlier than {OUTAGE_LOOKBACK.days} days before {since}, {_at(earliest)}.",
        )
    if started_at > now:
        return OutageTimesProblem(
            started_field, "outage_window", f"an outage cannot begin in the future (now is {_at(now)})."
        )
    if ended_at is not None and ended_at > now:
        return OutageTimesProblem(
            ended_field,
            "outage_window",
            f"an outage cannot end in the future: it lasts at most the time since it began "
            f"(now is {_at(now)}); leave {ended_field} out while the service is still down.",
        )
    return None
