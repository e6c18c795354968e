"""`record_ticket`: the activity that writes a ticket's row, events, notices and clocks to the read model.

Workflows are the source of truth; these rows are a projection for lists and reports.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from store.clock_outcomes import clock_rows, record_clocks, record_ticket_facts
from store.notifications import queue_notifications, record_outcomes
from store.tickets import record_events, upsert_ticket_row
from workflows.models import TicketRecord


class TicketReadModel:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn(name="record_ticket")
    async def record_ticket(self, record: TicketRecord) -> None:
        """Upsert the ticket row, append its new events, queue their notifications and record
        the clocks and facts the reports count, in one transaction: one activity per flush of
        the workflow.

        Keyed by ticket id and event seq, (ticket id, notification key) and (ticket id, clock
        index), so a retry writes nothing twice; an older record never overwrites a newer one.
        """
        row = record.row
        async with self._sessionmaker.begin() as session:
            await upsert_ticket_row(session=session, row=row)
            await record_events(session=session, ticket_id=row.ticket_id, events=record.events)
            await queue_notifications(session=session, notifications=record.notifications)
            if record.deliveries:
                await record_outcomes(session=session, outcomes=record.deliveries)
            # What the reports count: after the row (the clocks reference it) and the events
            # (the escalation counts read them).
            if record.clocks:
                rows = [
                    clock_rows([each.clock])[0].model_copy(update={"clock_no": each.clock_no})
                    for each in record.clocks
                ]
                await record_clocks(
                    session=session, ticket_id=row.ticket_id, updated_at=row.updated_at, clocks=rows
                )
            if record.facts is not None:
                await record_ticket_facts(
                    session=session,
                    ticket_id=row.ticket_id,
                    updated_at=row.updated_at,
                    acknowledged_at=record.facts.acknowledged_at,
                    resolved_at=record.facts.resolved_at,
                    waiting_seconds=record.facts.waiting_seconds,
                    outage_started_at=record.facts.outage_started_at,
                    outage_ended_at=record.facts.outage_ended_at,
                )
