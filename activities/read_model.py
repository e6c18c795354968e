"""`record_ticket`: the activity that writes a ticket's row, events, notices and clocks to the read model.

Workflows are the source of truth; these rows are a projection for lists and reports.

A write the database refuses on its data can never succeed, and retried for ever it would
wedge the ticket's record (issue 17 §1). It is set aside instead: kept in the quarantine table
with its error, counted in `escalator_record_failures_total` (the worker's metrics), logged
with the ticket's id, and failed as a non-retryable `RecordQuarantined`, on which the ticket
carries on (workflows/ticket.py). Any other failure (the database away) is retried as ever.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from store.clock_outcomes import clock_rows, record_clocks, record_ticket_facts
from store.notifications import queue_notifications, record_outcomes
from store.quarantine import data_error_kind, describe_error, quarantine_record
from store.tickets import record_events, upsert_ticket_row
from store.whatif_inputs import record_inputs
from workflows.models import TicketRecord
from workflows.ticket import RECORD_QUARANTINED

log = logging.getLogger("escalator.read_model")

# More to write in a record's transaction.
Write = Callable[[AsyncSession], Awaitable[None]]

RECORD_FAILURES = "escalator_record_failures_total"
RECORD_FAILURES_HELP = (
    "Read-model writes refused on their data and quarantined (not retried), by error kind "
    "(overflow, data, integrity)."
)


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
        A record the database refuses on its data is quarantined (see the module).
        """
        await self.write(record)

    async def write(self, record: TicketRecord, *, also: Sequence[Write] = ()) -> None:
        """Write the record, and `also` in the same transaction (the deliveries of the notices
        `notify_and_record` sent, activities/step.py); quarantined if the database refuses it
        on its data, raising the non-retryable `RecordQuarantined`."""
        try:
            await self._write(record, also)
        except Exception as error:
            kind = data_error_kind(error)
            if kind is None:
                raise
            raise await self._quarantine(record, kind, error) from error

    async def _quarantine(self, record: TicketRecord, kind: str, error: Exception) -> ApplicationError:
        """Keep the record with its error, count it, log it; the error the workflow gets."""
        ticket_id = record.row.ticket_id
        said = describe_error(error)
        if activity.in_activity():
            info = activity.info()
            run_id, activity_id = info.workflow_run_id or "", info.activity_id
        else:  # called directly (tests, tools): a key of its own
            run_id, activity_id = "", uuid.uuid4().hex
        try:
            async with self._sessionmaker.begin() as session:
                await quarantine_record(
                    session=session,
                    ticket_id=ticket_id,
                    run_id=run_id,
                    activity_id=activity_id,
                    error_kind=kind,
                    error=said,
                    record=record.model_dump(mode="json"),
                )
        except Exception as failed:
            if data_error_kind(failed) is None:
                raise  # the database went away meanwhile: retried, and quarantined then
            log.error("Could not keep the refused record of ticket %s: %s", ticket_id, describe_error(failed))
        if activity.in_activity():
            counter = activity.metric_meter().create_counter(RECORD_FAILURES, RECORD_FAILURES_HELP)
            counter.add(1, {"error": kind})
        log.error(
            "Quarantined a read-model record of ticket %s (%s: %s); the ticket carries on, its read "
            "model behind",
            ticket_id,
            kind,
            said,
        )
        return ApplicationError(
            f"The read model refused this record of ticket {ticket_id} ({kind}: {said}); it is "
            "kept in quarantined_records, not retried.",
            type=RECORD_QUARANTINED,
            non_retryable=True,
        )

    async def _write(self, record: TicketRecord, also: Sequence[Write] = ()) -> None:
        row = record.row
        async with self._sessionmaker.begin() as session:
            await upsert_ticket_row(session=session, row=row)
            await record_events(session=session, ticket_id=row.ticket_id, events=record.events)
            await queue_notifications(session=session, notifications=record.notifications)
            for write in also:
                await write(session)
            if record.opened is not None or record.actions:
                await record_inputs(
                    session=session, ticket_id=row.ticket_id, opened=record.opened, actions=record.actions
                )
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
