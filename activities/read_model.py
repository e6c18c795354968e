"""`record_ticket`: the activity that writes a ticket's row, events, notices and clocks to the read model.

Workflows are the source of truth; these rows are a projection for lists and reports.

A write the database refuses on its data can never succeed, and retried for ever it would
wedge the ticket's record (issue 17 §1). It is set aside instead: kept in the quarantine table
with its error, counted in `escalator_record_failures_total` (the worker's metrics), logged
with the ticket's id, and failed as a non-retryable `RecordQuarantined`, on which the ticket
carries on (workflows/ticket.py). Any other failure (the database away) is retried as ever.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from store.notifications import OutboxRow
from store.quarantine import data_error_kind, describe_error, quarantine_record
from store.ticket_records import RecordWrite, write_records
from workflows.models import TicketRecord
from workflows.ticket import RECORD_QUARANTINED

log = logging.getLogger("escalator.read_model")

RECORD_FAILURES = "escalator_record_failures_total"
RECORD_FAILURES_HELP = (
    "Read-model writes refused on their data and quarantined (not retried), by error kind "
    "(overflow, data, integrity)."
)

# The most records one transaction carries (group commit, below): enough that a storm's
# records go in a few transactions a second, few enough that one holds SQLite's single writer
# for tens of milliseconds, not seconds.
MAX_BATCH = 100


class TicketReadModel:
    """The worker's writer of ticket records.

    Group commit (issue 18): a record waits while the transaction before it commits, and then
    goes with every record that arrived meanwhile, in one transaction with one statement per
    table (store/ticket_records.py). A record that finds no transaction running goes at once,
    so a quiet worker writes each alone, as before. A batch the database refuses is written
    again one record per transaction, so that each record gets its own outcome: the one whose
    data is refused is quarantined, the rest land.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH) -> None:
        self._sessionmaker = sessionmaker
        self._max_batch = max_batch
        self._waiting: list[tuple[RecordWrite, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

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

    async def write(self, record: TicketRecord, *, deliveries: Sequence[OutboxRow] = ()) -> None:
        """Write the record, and the outbox rows of the deliveries its step sent
        (`notify_and_record`, activities/step.py) in the same transaction; quarantined if the
        database refuses it on its data, raising the non-retryable `RecordQuarantined`."""
        try:
            await self._committed(RecordWrite(record, tuple(deliveries)))
        except Exception as error:
            kind = data_error_kind(error)
            if kind is None:
                raise
            raise await self._quarantine(record, kind, error) from error

    async def _committed(self, write: RecordWrite) -> None:
        """Once the record's transaction has committed (or failed, with its error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((write, done))
        if self._writer is None or self._writer.done():
            # A context of its own: the writer outlives the activity that happened to start it.
            self._writer = asyncio.create_task(self._write_waiting(), context=contextvars.Context())
        await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            # A waiter given up (its activity timed out or was cancelled) is not written: its
            # ticket writes the record again.
            batch = [(write, done) for write, done in batch if not done.done()]
            if not batch:
                continue
            try:
                await self._write_together([write for write, _ in batch])
            except asyncio.CancelledError:
                # The writer itself was cancelled (the loop is closing): no record waits for a
                # writer that is gone; each waiter's activity fails and its ticket writes again.
                for _, done in [*batch, *self._waiting]:
                    done.cancel()
                self._waiting.clear()
                raise
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error)
                    continue
                for write, done in batch:
                    try:
                        await self._write_together([write])
                    except Exception as alone:
                        _settle(done, alone)
                    else:
                        _settle(done, None)
            else:
                for _, done in batch:
                    _settle(done, None)

    async def _write_together(self, writes: Sequence[RecordWrite]) -> None:
        async with self._sessionmaker.begin() as session:
            await write_records(session=session, writes=writes)

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


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
