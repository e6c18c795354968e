"""What a ticket's next record must carry to the read model: the change tracker.

Pure: no Temporal, no I/O. TicketWorkflow (workflows/ticket.py) asks the tracker whether a
record is due, takes the next record from it, runs it as the `record_ticket` activity, and
tells the tracker how that went. The tracker keeps what the read model already has:

- the clocks as last recorded, so a record carries only the clocks that changed since
  (by index: a ticket's clock list only ever grows);
- the report facts as last recorded, so they travel when they changed, or with an
  escalation (the read model recounts those from the facts);
- whether the row changed without a new event (holidays pinned), so it is written anyway.

Once recorded, events leave the state: the read model and the history keep them. A record
the read model refused (quarantined) leaves the tracker knowing nothing, so the next record
carries every clock and the facts again, to catch up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflows.models import (
    DeliveryOutcome,
    Notification,
    RecordedClock,
    SlaClock,
    TicketFacts,
    TicketRecord,
    TicketState,
)


@dataclass(frozen=True)
class PendingRecord:
    """One record on its way, with what the tracker learns once it is written."""

    record: TicketRecord
    clocks: list[SlaClock]
    facts: TicketFacts

    @property
    def last_seq(self) -> int | None:
        """The newest event this record carries, if any."""
        return self.record.events[-1].seq if self.record.events else None


def facts_of(state: TicketState, now: datetime) -> TicketFacts:
    """What the reports count of the ticket at `now`, beside its clocks (DESIGN.md §12)."""
    return TicketFacts(
        acknowledged_at=state.acknowledged_at,
        resolved_at=state.resolved_at,
        waiting_seconds=state.waiting_seconds(now),
        outage_started_at=state.outage_started_at,
        outage_ended_at=state.outage_ended_at,
    )


@dataclass
class ChangeTracker:
    """What the read model holds of one ticket, and so what its next record must carry."""

    # The clocks and facts as last recorded; None facts: unknown, send them.
    recorded_clocks: list[SlaClock] = field(default_factory=list)
    recorded_facts: TicketFacts | None = None
    # The row changed without a new event (holidays pinned): write it on the next record.
    row_stale: bool = False

    @classmethod
    def starting(cls, *, continued: bool) -> ChangeTracker:
        """A new ticket's row starts with no facts; a continued one writes its facts once more."""
        return cls(recorded_facts=None if continued else TicketFacts())

    def row_changed(self) -> None:
        self.row_stale = True

    def due(
        self, state: TicketState, notifications: list[Notification], deliveries: list[DeliveryOutcome]
    ) -> bool:
        """Anything to record: events, notices, delivery outcomes, or a row changed alone."""
        return bool(state.events or notifications or self.row_stale or deliveries)

    def next_record(
        self,
        state: TicketState,
        now: datetime,
        notifications: list[Notification],
        deliveries: list[DeliveryOutcome],
    ) -> PendingRecord:
        """The record of everything new in `state` at `now`, with the notices and outcomes given."""
        self.row_stale = False
        events = list(state.events)
        recorded = self.recorded_clocks
        clocks = [
            RecordedClock(clock_no=n, clock=clock)
            for n, clock in enumerate(state.clocks)
            if n >= len(recorded) or clock != recorded[n]
        ]
        facts = facts_of(state, now)
        escalates = any(event.is_escalation for event in events)
        record = TicketRecord(
            row=state.row(now),
            events=events,
            notifications=notifications,
            clocks=clocks,
            facts=facts if escalates or facts != self.recorded_facts else None,
            deliveries=deliveries,
        )
        return PendingRecord(record, [clock.model_copy() for clock in state.clocks], facts)

    def settle(self, state: TicketState, pending: PendingRecord, *, written: bool) -> None:
        """Learn how `pending` went, and drop its events from the state.

        Events that actions added while the record was under way stay pending. A refused
        record is not retried, so its events leave the state all the same.
        """
        if written:
            self.recorded_clocks, self.recorded_facts = pending.clocks, pending.facts
        else:
            self.recorded_clocks, self.recorded_facts = [], None
        last = pending.last_seq
        if last is not None:
            state.events = [event for event in state.events if event.seq > last]
