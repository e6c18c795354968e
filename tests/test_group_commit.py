"""Group commit (issue 18): the worker writes the records waiting for the read model together,
in one transaction with one statement per table (activities/read_model.py,
store/ticket_records.py). On SQLite, and on PostgreSQL when CI sets it:

- records written together land exactly as written one at a time, two records of one ticket
  in one batch included, in either order;
- they go in as few transactions as the batch size allows;
- a record the database refuses on its data is quarantined alone, and the rest of its batch
  lands; a database that is away fails every record, none quarantined.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.read_model import TicketReadModel
from store.db import Ticket, make_engine, make_sessionmaker
from store.notifications import OutboxRow, delivery_row
from store.quarantine import quarantined_records
from tests.factories import deadline_steps
from tests.test_record_quarantine import refused_record
from workflows.enums import NoticeChannel
from workflows.models import DeliveryOutcome, TicketStep
from workflows.ticket import RECORD_QUARANTINED

RECEIVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DELIVERED = datetime(2026, 11, 2, 9, 1, tzinfo=UTC)
TICKETS = 12
TABLES = ("tickets", "ticket_events", "ticket_clocks", "notifications", "ticket_openings", "ticket_actions")


def delivered(step: TicketStep) -> list[OutboxRow]:
    """The outbox rows of the step's notices, as if each was sent at DELIVERED."""
    return [
        delivery_row(
            each.notification,
            DeliveryOutcome(
                ticket_id=each.notification.ticket_id,
                key=each.notification.key,
                channel=each.notification.channel or NoticeChannel.CHAT,
                sink="log",
                delivered_at=DELIVERED,
            ),
        )
        for each in step.deliveries
    ]


async def write(read_model: TicketReadModel, step: TicketStep) -> None:
    await read_model.write(step.record, deliveries=delivered(step))


async def rows_of(sessionmaker: async_sessionmaker[AsyncSession], prefix: str) -> dict[str, list[Any]]:
    """Every read-model row of the tickets whose id starts with `prefix`, the prefix taken out
    and the columns the write stamps with its own clock left out."""
    found: dict[str, list[Any]] = {}
    async with sessionmaker() as session:
        for table in TABLES:
            result = await session.execute(
                text(f"SELECT * FROM {table} WHERE ticket_id LIKE :prefix"), {"prefix": f"{prefix}%"}
            )
            rows = [
                {
                    name: without(prefix, value)
                    for name, value in row._mapping.items()
                    if name not in ("id", "created_at")
                }
                for row in result
            ]
            found[table] = sorted(rows, key=repr)
    return found


def without(prefix: str, value: Any) -> Any:
    """The value with the prefix taken out of its strings, a JSON column's (a dict on
    PostgreSQL) included."""
    if isinstance(value, str):
        return value.replace(prefix, "")
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value).replace(prefix, ""))
    return value


def count_commits(engine: AsyncEngine) -> list[int]:
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _connection: commits.append(1))
    return commits


async def test_records_written_together_land_as_written_one_at_a_time_in_fewer_transactions(
    db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    read_model = TicketReadModel(sessionmaker, max_batch=5)
    alone = [deadline_steps(f"alone-{i}", RECEIVED) for i in range(TICKETS)]
    together = [deadline_steps(f"group-{i}", RECEIVED) for i in range(TICKETS)]
    for steps in alone:
        for step in steps:
            await write(read_model, step)

    commits = count_commits(db_engine)
    await asyncio.gather(*(write(read_model, intake) for intake, _, _ in together))
    assert len(commits) == math.ceil(TICKETS / 5)
    # A ticket's warning and breach in one batch, the breach first for every other ticket: the
    # newer record wins whichever lands first.
    later = [
        step
        for i, (_, warning, breach) in enumerate(together)
        for step in ((warning, breach) if i % 2 else (breach, warning))
    ]
    await asyncio.gather(*(write(read_model, step) for step in later))
    assert len(commits) == math.ceil(TICKETS / 5) + math.ceil(2 * TICKETS / 5)

    grouped = await rows_of(sessionmaker, "group-")
    assert grouped == await rows_of(sessionmaker, "alone-")
    # What was compared is all there: every ticket, its three records' events and notices.
    assert len(grouped["tickets"]) == TICKETS and len(grouped["ticket_openings"]) == TICKETS
    assert len(grouped["ticket_events"]) == sum(len(step.record.events) for step in together[0]) * TICKETS
    assert {row["sla_breached"] for row in grouped["tickets"]} == {True}
    assert all(row["delivered_at"] is not None for row in grouped["notifications"])


async def test_a_refused_record_is_quarantined_alone_and_the_rest_of_its_batch_lands(
    db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    read_model = TicketReadModel(sessionmaker)
    good = [deadline_steps(f"good-{i}", RECEIVED)[0] for i in range(4)]
    commits = count_commits(db_engine)

    results = await asyncio.gather(
        write(read_model, good[0]),
        write(read_model, good[1]),
        read_model.write(refused_record("t-refused")),
        write(read_model, good[2]),
        write(read_model, good[3]),
        return_exceptions=True,
    )

    refused, rest = results[2], [*results[:2], *results[3:]]
    assert isinstance(refused, ApplicationError) and refused.type == RECORD_QUARANTINED
    assert rest == [None] * 4
    async with sessionmaker() as session:
        for step in good:
            assert await session.get(Ticket, step.record.row.ticket_id) is not None
        assert await session.get(Ticket, "t-refused") is None
        assert len(await quarantined_records(session=session, ticket_id="t-refused")) == 1
    # The batch was refused whole, then written one record per transaction: four records and
    # the quarantined one.
    assert len(commits) == 5


async def test_a_database_that_is_away_fails_every_record_of_the_batch_and_quarantines_none(
    tmp_path: Path,
) -> None:
    # No schema: SQLite's OperationalError ("no such table"), as when the database is not ready.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    read_model = TicketReadModel(make_sessionmaker(engine))
    try:
        results = await asyncio.gather(
            *(write(read_model, deadline_steps(f"t-{i}", RECEIVED)[0]) for i in range(3)),
            return_exceptions=True,
        )
    finally:
        await engine.dispose()
    assert [type(each) for each in results] == [OperationalError] * 3


class Gate:
    """A sessionmaker whose transactions wait at `begin` until the test opens the gate, so the
    test knows exactly what the writer holds: the batch it took, and what still waits behind."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        self.entered.set()
        await self.opened.wait()
        async with self._sessionmaker.begin() as session:
            yield session


def gated(sessionmaker: async_sessionmaker[AsyncSession], max_batch: int) -> tuple[TicketReadModel, Gate]:
    gate = Gate(sessionmaker)
    return TicketReadModel(cast(async_sessionmaker[AsyncSession], gate), max_batch=max_batch), gate


@pytest.mark.parametrize("max_batch", [1, 2])
async def test_a_waiter_that_gives_up_is_not_written_and_holds_back_no_other(
    sessionmaker: async_sessionmaker[AsyncSession], max_batch: int
) -> None:
    read_model, gate = gated(sessionmaker, max_batch)
    intakes = [deadline_steps(f"wait-{i}", RECEIVED)[0] for i in range(4)]
    tasks = [asyncio.create_task(write(read_model, step)) for step in intakes]
    # The writer holds its first batch (the first `max_batch` records) at the gate, and the third
    # record waits behind it: give that one up, then let the writer go.
    await gate.entered.wait()
    assert [write.record for write, _ in read_model._waiting][:1] == [intakes[max_batch].record]
    tasks[2].cancel()
    gate.opened.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(done[2], asyncio.CancelledError)
    async with sessionmaker() as session:
        written = [await session.get(Ticket, step.record.row.ticket_id) is not None for step in intakes]
    assert written == [True, True, False, True]


async def test_a_writer_cancelled_mid_batch_leaves_no_record_waiting_for_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    read_model, gate = gated(sessionmaker, 1)
    intakes = [deadline_steps(f"gone-{i}", RECEIVED)[0] for i in range(3)]
    tasks = [asyncio.create_task(write(read_model, step)) for step in intakes]
    # The writer holds the first record at the gate; the other two wait behind it.
    await gate.entered.wait()
    assert len(read_model._waiting) == 2 and read_model._writer is not None
    read_model._writer.cancel()

    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(each) for each in done] == [asyncio.CancelledError] * 3
    assert read_model._waiting == []
    # The next record starts a writer of its own.
    gate.opened.set()
    await write(read_model, deadline_steps("after", RECEIVED)[0])
    async with sessionmaker() as session:
        assert await session.get(Ticket, "after") is not None
