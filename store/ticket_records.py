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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncSession

from store.clock_outcomes import (
    clock_params,
    clock_upsert,
    escalation_rollups,
    facts_params,
    facts_update,
    recorded_clock_rows,
    response_rollups,
)
from store.notifications import OutboxRow, outbox_upsert_many, queue_notifications, record_outcomes
from store.tickets import event_insert, event_params, row_upsert
from store.whatif_inputs import action_insert, action_params, opening_insert, opening_params
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
    await _execute(session, event_insert(session), (event_params(r.row.ticket_id, r.events) for r in records))
    await queue_notifications(
        session=session, notifications=[notice for record in records for notice in record.notifications]
    )
    await outbox_upsert_many(session, [row for each in writes for row in each.deliveries])
    openings = [[opening_params(r.row.ticket_id, r.opened)] for r in records if r.opened is not None]
    await _execute(session, opening_insert(session), openings)
    await _execute(
        session, action_insert(session), (action_params(r.row.ticket_id, r.actions) for r in records)
    )
    await record_outcomes(
        session=session, outcomes=[outcome for record in records for outcome in record.deliveries]
    )
    # What the reports count: after the rows (the clocks reference them) and the events (the
    # escalation counts read them); then each ticket's rollups, once.
    with_clocks = [record for record in records if record.clocks]
    clocks = (
        clock_params(r.row.ticket_id, r.row.updated_at, recorded_clock_rows(r.clocks)) for r in with_clocks
    )
    if await _execute(session, clock_upsert(session), clocks):
        await session.execute(response_rollups(), _tickets_of(with_clocks))
    with_facts = [(record, record.facts) for record in records if record.facts is not None]
    facts = [[facts_params(r.row.ticket_id, r.row.updated_at, f)] for r, f in with_facts]
    if await _execute(session, facts_update(), facts):
        await session.execute(escalation_rollups(), _tickets_of([record for record, _ in with_facts]))


async def _execute(session: AsyncSession, stmt: Executable, params: Iterable[list[dict[str, Any]]]) -> bool:
    """Run `stmt` once with every ticket's parameters, if there are any; whether it ran."""
    rows = [row for each in params for row in each]
    if rows:
        await session.execute(stmt, rows)
    return bool(rows)


def _tickets_of(records: Sequence[TicketRecord]) -> list[dict[str, str]]:
    """Each ticket once, as the rollups' parameter."""
    return [{"rollup_ticket_id": ticket_id} for ticket_id in dict.fromkeys(r.row.ticket_id for r in records)]
