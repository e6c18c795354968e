"""Many tickets' records in one transaction, one statement per table (issue 18's group commit).

`record_ticket` and `notify_and_record` each hand the read model one record: the ticket's row,
its new events, notices, clocks and facts, and the deliveries its step sent. Written one record
per transaction, a deadline's step cost the worker about a dozen statements, each a hop to
the database driver's thread and back, and most of its time went in those hops
(docs/benchmarks.md, "The step's own cost"). Here the records the worker has waiting are
written together: each table gets one execution with every record's rows as its parameters,
in the order the single-record write had (the row, its events, the notices, their deliveries,
the what-if inputs, the late delivery outcomes, then the clocks and facts that read them).

Nothing about a record's meaning changes with its company. Every write is keyed (ticket id,
event seq, notice key, clock index) and guarded by the ticket's `updated_at` as before, so two
records of one ticket in one batch land as they would one after the other, in either order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store.clock_outcomes import clock_rows, clock_upsert, escalation_rollups, facts_update, response_rollups
from store.db import TicketActionRecord, TicketOpening
from store.notifications import OutboxRow, outbox_upsert_many, queue_notifications, record_outcomes
from store.tickets import event_insert, insert_ignoring, row_upsert
from workflows.models import TicketRecord


@dataclass(frozen=True)
class RecordWrite:
    """One record to write, with the outbox rows of the deliveries its step sent."""

    record: TicketRecord
    deliveries: Sequence[OutboxRow] = field(default_factory=tuple)


async def write_records(*, session: AsyncSession, writes: Sequence[RecordWrite]) -> None:
    """Write every record in `writes` in the session's transaction, a statement per table.

    In the order of their tickets' ids (two records of one ticket keep theirs): two workers'
    batches then take their rows' locks in one order, and on PostgreSQL do not deadlock."""
    writes = sorted(writes, key=lambda each: each.record.row.ticket_id)
    records = [each.record for each in writes]
    await session.execute(row_upsert(session), [record.row.model_dump() for record in records])
    events = [
        {"ticket_id": record.row.ticket_id, **event.model_dump()}
        for record in records
        for event in record.events
    ]
    if events:
        await session.execute(event_insert(session), events)
    await queue_notifications(
        session=session, notifications=[notice for record in records for notice in record.notifications]
    )
    await outbox_upsert_many(session, [row for each in writes for row in each.deliveries])
    await _record_inputs(session, records)
    await record_outcomes(
        session=session, outcomes=[outcome for record in records for outcome in record.deliveries]
    )
    # What the reports count: after the rows (the clocks reference them) and the events (the
    # escalation counts read them).
    await _record_clocks(session, records)
    await _record_facts(session, records)


async def _record_inputs(session: AsyncSession, records: Sequence[TicketRecord]) -> None:
    openings = [
        {
            "ticket_id": record.row.ticket_id,
            "opened": record.opened.model_dump(mode="json", exclude={"carried_state"}),
        }
        for record in records
        if record.opened is not None
    ]
    if openings:
        await session.execute(insert_ignoring(session, TicketOpening, ["ticket_id"]), openings)
    actions = [
        {"ticket_id": record.row.ticket_id, **action.model_dump(mode="json", exclude={"at"}), "at": action.at}
        for record in records
        for action in record.actions
    ]
    if actions:
        await session.execute(insert_ignoring(session, TicketActionRecord, ["ticket_id", "seq"]), actions)


async def _record_clocks(session: AsyncSession, records: Sequence[TicketRecord]) -> None:
    """Upsert the changed clocks, then recount the response rollups of their tickets."""
    with_clocks = [record for record in records if record.clocks]
    if not with_clocks:
        return
    rows: list[dict[str, Any]] = []
    for record in with_clocks:
        changed = clock_rows([each.clock for each in record.clocks])
        for each, row in zip(record.clocks, changed, strict=True):
            rows.append(
                {
                    "ticket_id": record.row.ticket_id,
                    "updated_at": record.row.updated_at,
                    **row.model_dump(),
                    "clock_no": each.clock_no,
                }
            )
    await session.execute(clock_upsert(session), rows)
    await session.execute(response_rollups(), _tickets_of(with_clocks))


async def _record_facts(session: AsyncSession, records: Sequence[TicketRecord]) -> None:
    """Set the report facts of the records that carry them (unless a newer record wrote the
    row), then recount those tickets' escalations from their events."""
    with_facts = [record for record in records if record.facts is not None]
    if not with_facts:
        return
    rows = []
    for record in with_facts:
        facts = record.facts
        assert facts is not None
        rows.append(
            {
                "facts_ticket_id": record.row.ticket_id,
                "facts_updated_at": record.row.updated_at,
                "facts_acknowledged_at": facts.acknowledged_at,
                "facts_resolved_at": facts.resolved_at,
                "facts_waiting_seconds": facts.waiting_seconds,
                "facts_outage_started_at": facts.outage_started_at,
                "facts_outage_ended_at": facts.outage_ended_at,
            }
        )
    await session.execute(facts_update(), rows)
    await session.execute(escalation_rollups(), _tickets_of(with_facts))


def _tickets_of(records: Sequence[TicketRecord]) -> list[dict[str, str]]:
    """Each ticket once, as the rollups' parameter."""
    return [{"rollup_ticket_id": ticket_id} for ticket_id in dict.fromkeys(r.row.ticket_id for r in records)]
