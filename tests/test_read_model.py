"""The SQL read model and the notification outbox, on every configured database backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.read_model import TicketReadModel
from store.db import Base, Ticket, TicketClockRecord, TicketEventRecord, alembic_config, make_engine, migrate
from store.notifications import list_outbox
from store.tickets import get_ticket_row, get_timeline, list_tickets
from workflows.enums import (
    Audience,
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    OwningLine,
    Product,
    ProductType,
    Severity,
    TicketStatus,
    Tier,
)
from workflows.models import (
    Notification,
    RecordedClock,
    SlaClock,
    TicketEvent,
    TicketFacts,
    TicketRecord,
    TicketRow,
)
from workflows.permissions import TicketScope
from workflows.terms import ResponseTarget

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

Sessionmaker = async_sessionmaker[AsyncSession]


def ticket_row(ticket_id: str = "t-1", **changes: object) -> TicketRow:
    row = TicketRow(
        ticket_id=ticket_id,
        workflow_id=f"ticket-{ticket_id}",
        customer_id="acme",
        partner_id=None,
        contract_id="ctr-acme",
        policy_version="2025.1",
        title="Login down",
        product=Product.IDENTITY,
        product_type=ProductType.PLATFORM,
        tier=Tier.PREMIUM,
        severity=Severity.CRITICAL,
        status=TicketStatus.OPEN,
        level=3,
        owning_line=OwningLine.CONNECTSOFT,
        received_at=T0,
        response_due=T0 + timedelta(hours=1),
        sla_breached=False,
        updated_at=T0,
    )
    return row.model_copy(update=changes)


def event(seq: int, kind: str = "commented", **changes: object) -> TicketEvent:
    return TicketEvent(
        seq=seq,
        at=T0 + timedelta(minutes=seq),
        kind=kind,
        summary=f"event {seq}",
        **changes,
    )


async def count(sessionmaker: Sessionmaker, entity: type[Base]) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(entity)) or 0


async def test_record_ticket_records_row_and_events(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    row = ticket_row()
    events = [event(1, "opened", level=1, detail={"channel": "email"}), event(2, "escalated", level=3)]

    await ActivityEnvironment().run(read_model.record_ticket, TicketRecord(row=row, events=events))

    async with sessionmaker() as session:
        assert await get_ticket_row(session=session, ticket_id="t-1") == row
        assert await get_timeline(session=session, ticket_id="t-1") == events


async def test_retried_record_writes_nothing_twice(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    record = TicketRecord(row=ticket_row(), events=[event(1), event(2)])

    await read_model.record_ticket(record)
    await read_model.record_ticket(record)

    assert await count(sessionmaker, Ticket) == 1
    assert await count(sessionmaker, TicketEventRecord) == 2


async def test_later_sync_appends_new_events_and_updates_the_row(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(1), event(2)]))
    acknowledged = ticket_row(
        status=TicketStatus.ACKNOWLEDGED, level=4, sla_breached=True, updated_at=T0 + timedelta(minutes=30)
    )

    # Overlapping batch: seq 2 again (already stored) plus seq 3.
    await read_model.record_ticket(
        TicketRecord(row=acknowledged, events=[event(2), event(3, "acknowledged")])
    )

    async with sessionmaker() as session:
        assert await get_ticket_row(session=session, ticket_id="t-1") == acknowledged
        timeline = await get_timeline(session=session, ticket_id="t-1")
    assert [(e.seq, e.kind) for e in timeline] == [(1, "commented"), (2, "commented"), (3, "acknowledged")]


async def test_stale_sync_arriving_late_does_not_roll_the_row_back(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    newer = ticket_row(status=TicketStatus.RESOLVED, updated_at=T0 + timedelta(hours=2))
    await read_model.record_ticket(TicketRecord(row=newer, events=[]))

    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(1)]))

    async with sessionmaker() as session:
        assert await get_ticket_row(session=session, ticket_id="t-1") == newer
        assert [e.seq for e in await get_timeline(session=session, ticket_id="t-1")] == [1]


async def test_timeline_is_ordered_by_seq_whatever_the_insert_order(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(3), event(1)]))
    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(2)]))

    async with sessionmaker() as session:
        assert [e.seq for e in await get_timeline(session=session, ticket_id="t-1")] == [1, 2, 3]
        assert await get_timeline(session=session, ticket_id="t-unknown") == []


async def test_times_read_back_as_the_same_instant_in_utc(sessionmaker: Sessionmaker) -> None:
    berlin = datetime(2025, 7, 1, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    await TicketReadModel(sessionmaker).record_ticket(
        TicketRecord(row=ticket_row(received_at=berlin, response_due=None), events=[])
    )

    async with sessionmaker() as session:
        row = await get_ticket_row(session=session, ticket_id="t-1")
    assert row is not None
    assert row.received_at == berlin
    assert row.received_at.utcoffset() == timedelta(0)
    assert row.response_due is None


async def test_unknown_ticket_has_no_row(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker() as session:
        assert await get_ticket_row(session=session, ticket_id="nope") is None


async def seed_tickets(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    specs = [
        ("a1", "acme", Tier.PREMIUM, Severity.CRITICAL, TicketStatus.OPEN, True),
        ("a2", "acme", Tier.PREMIUM, Severity.LOW, TicketStatus.RESOLVED, False),
        ("g1", "globex", Tier.STANDARD, Severity.HIGH, TicketStatus.OPEN, False),
        ("g2", "globex", Tier.STANDARD, Severity.CRITICAL, TicketStatus.ACKNOWLEDGED, True),
        ("i1", "initech", Tier.BASIC, Severity.MEDIUM, TicketStatus.OPEN, False),
    ]
    for hour, (ticket_id, customer_id, tier, severity, status, breached) in enumerate(specs):
        row = ticket_row(
            ticket_id,
            customer_id=customer_id,
            tier=tier,
            severity=severity,
            status=status,
            sla_breached=breached,
            received_at=T0 + timedelta(hours=hour),
            incident_id="inc-1" if ticket_id in ("a1", "g1") else None,
        )
        await read_model.record_ticket(TicketRecord(row=row, events=[]))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["i1", "g2", "g1", "a2", "a1"]),
        ({"customer_id": "acme"}, ["a2", "a1"]),
        ({"status": TicketStatus.OPEN}, ["i1", "g1", "a1"]),
        ({"tier": Tier.STANDARD}, ["g2", "g1"]),
        ({"severity": Severity.CRITICAL}, ["g2", "a1"]),
        ({"breached": True}, ["g2", "a1"]),
        ({"breached": False, "status": TicketStatus.OPEN}, ["i1", "g1"]),
        ({"customer_id": "umbrella"}, []),
        ({"incident_id": "inc-1"}, ["g1", "a1"]),
        ({"incident_id": "inc-1", "scope": TicketScope(customer_id="acme")}, ["a1"]),
        ({"incident_id": "inc-2"}, []),
    ],
)
async def test_list_tickets_filters_newest_first(
    sessionmaker: Sessionmaker, filters: dict[str, object], expected: list[str]
) -> None:
    await seed_tickets(sessionmaker)

    async with sessionmaker() as session:
        rows, total = await list_tickets(session=session, **filters)  # type: ignore[arg-type]

    assert [row.ticket_id for row in rows] == expected
    assert total == len(expected)


async def test_list_tickets_pages_without_overlap_and_counts_all_matches(sessionmaker: Sessionmaker) -> None:
    await seed_tickets(sessionmaker)

    async with sessionmaker() as session:
        first, total = await list_tickets(session=session, limit=2)
        second, _ = await list_tickets(session=session, limit=2, offset=2)
        last, _ = await list_tickets(session=session, limit=2, offset=4)
        beyond, beyond_total = await list_tickets(session=session, limit=2, offset=10)

    assert total == 5
    assert [r.ticket_id for r in first + second + last] == ["i1", "g2", "g1", "a2", "a1"]
    assert beyond == [] and beyond_total == 5


def notification(key: str = "opened", **changes: object) -> Notification:
    return Notification(
        key=key,
        ticket_id="t-1",
        audience=Audience.SUPPORT_L1,
        subject="New Sev 1 ticket",
        body="Login down",
    ).model_copy(update=changes)


async def test_one_record_writes_the_row_the_events_and_their_notifications_together(
    sessionmaker: Sessionmaker,
) -> None:
    read_model = TicketReadModel(sessionmaker)
    first = notification("1-support_l1")
    page = notification("1-on_call", audience=Audience.ON_CALL, subject="Sev 1 at acme", page=True)
    record = TicketRecord(row=ticket_row(), events=[event(1, "opened")], notifications=[first, page])

    await ActivityEnvironment().run(read_model.record_ticket, record)

    async with sessionmaker() as session:
        assert await get_ticket_row(session=session, ticket_id="t-1") == record.row
        assert [e.seq for e in await get_timeline(session=session, ticket_id="t-1")] == [1]
        outbox = await list_outbox(session=session, ticket_id="t-1")
        assert await list_outbox(session=session, ticket_id="t-other") == []
    assert sorted(outbox, key=lambda n: n.key) == [page, first]


async def test_retried_record_queues_each_notification_once(sessionmaker: Sessionmaker) -> None:
    read_model = TicketReadModel(sessionmaker)
    first = notification("1-support_l1")
    later = notification("2-customer", audience=Audience.CUSTOMER, subject="We are on it")

    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(1)], notifications=[first]))
    # A retry of the first record, then a later one that repeats a notice already queued.
    await read_model.record_ticket(TicketRecord(row=ticket_row(), events=[event(1)], notifications=[first]))
    await read_model.record_ticket(
        TicketRecord(row=ticket_row(), events=[event(2)], notifications=[first, later])
    )

    async with sessionmaker() as session:
        outbox = await list_outbox(session=session, ticket_id="t-1")
    assert sorted(outbox, key=lambda n: n.key) == [first, later]
    # Delivery (and its log line) is the deliver_notification activity's: tests/test_notifications.py.


async def test_migrations_create_exactly_the_orm_schema(db_engine: AsyncEngine) -> None:
    def schema_drift(connection: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with db_engine.connect() as connection:
        assert await connection.run_sync(schema_drift) == []


async def test_migrating_twice_is_a_no_op(db_engine: AsyncEngine) -> None:
    await migrate(db_engine)

    async with db_engine.connect() as connection:
        versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert len(versions) == 1


async def test_two_databases_migrate_at_once_in_one_process(tmp_path: Path) -> None:
    """Alembic's proxies are process globals: two migrations awaiting their DDL side by side
    used to run one's DDL on the other's connection (the flaky fault drill, issue 17 §9)."""
    engines = [make_engine(f"sqlite:///{tmp_path / f'db{n}.sqlite'}") for n in range(3)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        for engine in engines:
            async with engine.connect() as connection:
                tables = (await connection.execute(text("SELECT count(*) FROM tickets"))).scalar_one()
                version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert tables == 0
            assert len(version) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_sqlite_engine_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'escalator.db'}")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    # synchronous=1 is NORMAL.
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 15000}
    assert (tmp_path / "nested" / "dir" / "escalator.db").exists()


async def test_a_record_carries_the_changed_clocks_and_the_facts_the_reports_count(
    sessionmaker: Sessionmaker,
) -> None:
    read_model = TicketReadModel(sessionmaker)
    target = ResponseTarget(minutes=60, calendar=CoverageCalendar.ALWAYS, label="1 h 24x7")
    first = SlaClock(
        kind=ClockKind.FIRST_RESPONSE, target=target, started_at=T0, due_at=T0 + timedelta(hours=1)
    )
    await read_model.record_ticket(
        TicketRecord(
            row=ticket_row(),
            events=[event(1, "opened")],
            clocks=[RecordedClock(clock_no=0, clock=first)],
            facts=TicketFacts(),
        )
    )
    # Later only the clock that changed travels, and the facts as they are now.
    met = first.model_copy(update={"status": ClockStatus.MET, "stopped_at": T0 + timedelta(minutes=20)})
    acknowledged_at = T0 + timedelta(minutes=20)
    later = ticket_row(status=TicketStatus.ACKNOWLEDGED, updated_at=acknowledged_at)
    await read_model.record_ticket(
        TicketRecord(
            row=later,
            events=[event(2, "acknowledged")],
            clocks=[RecordedClock(clock_no=0, clock=met)],
            facts=TicketFacts(acknowledged_at=acknowledged_at, waiting_seconds=90),
        )
    )

    async with sessionmaker() as session:
        clock = await session.get(TicketClockRecord, ("t-1", 0))
        ticket = await session.get(Ticket, "t-1")
    assert clock is not None and (clock.status, clock.stopped_at) == ("met", acknowledged_at)
    assert ticket is not None
    assert (ticket.acknowledged_at, ticket.waiting_seconds) == (acknowledged_at, 90)
    assert (ticket.connectsoft_response_clocks, ticket.connectsoft_responses_met) == (1, 1)


async def test_migration_0013_fills_the_queue_clock_of_rows_recorded_before_it(
    db_engine: AsyncEngine, sessionmaker: Sessionmaker
) -> None:
    """Rows recorded before the queue's columns existed get their next clock from
    `ticket_clocks`: an unanswered breached response first, else the live binding clock due
    soonest, else an indicative one; none for a ticket done with."""
    read_model = TicketReadModel(sessionmaker)
    hour = ResponseTarget(minutes=60, calendar=CoverageCalendar.ALWAYS, label="1 h 24x7")
    basic = ResponseTarget(minutes=60, calendar=CoverageCalendar.ALWAYS, label="≈ 1 h", binding=False)

    def clock(kind: ClockKind, due_minutes: int, **changes: object) -> SlaClock:
        due = {"started_at": T0, "due_at": T0 + timedelta(minutes=due_minutes)}
        return SlaClock.model_validate({"kind": kind, "target": hour} | due | changes)

    breached = clock(ClockKind.FIRST_RESPONSE, 60, status=ClockStatus.BREACHED, level=3)
    escalation = clock(ClockKind.ESCALATION_ACK, 90, level=4)
    indicative = clock(ClockKind.FIRST_RESPONSE, 30, target=basic)
    live = clock(ClockKind.RESOLUTION, 120, status=ClockStatus.WARNED)
    tickets = {
        "t-breached": (TicketStatus.OPEN, [breached, escalation]),
        "t-answered": (TicketStatus.ACKNOWLEDGED, [breached, escalation]),
        "t-binding-first": (TicketStatus.OPEN, [indicative, live]),
        "t-basic": (TicketStatus.OPEN, [indicative]),
        "t-closed": (TicketStatus.CLOSED, [live]),
    }
    for ticket_id, (status, clocks) in tickets.items():
        await read_model.record_ticket(
            TicketRecord(
                row=ticket_row(ticket_id, status=status),
                clocks=[RecordedClock(clock_no=n, clock=each) for n, each in enumerate(clocks)],
            )
        )

    def back_to_0012(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")

    async with db_engine.begin() as connection:
        await connection.run_sync(back_to_0012)
    await migrate(db_engine)

    async with sessionmaker() as session:
        rows = {
            ticket_id: await get_ticket_row(session=session, ticket_id=ticket_id) for ticket_id in tickets
        }
    filled = {
        ticket_id: (
            row.next_clock_kind,
            row.next_clock_due_at,
            row.next_clock_binding,
            row.next_clock_awaited,
        )
        for ticket_id, row in rows.items()
        if row is not None
    }
    assert filled == {
        "t-breached": (ClockKind.FIRST_RESPONSE, T0 + timedelta(minutes=60), True, True),
        "t-answered": (ClockKind.ESCALATION_ACK, T0 + timedelta(minutes=90), True, False),
        "t-binding-first": (ClockKind.RESOLUTION, T0 + timedelta(minutes=120), True, False),
        "t-basic": (ClockKind.FIRST_RESPONSE, T0 + timedelta(minutes=30), False, False),
        "t-closed": (None, None, None, False),
    }
    breached_row = rows["t-breached"]
    assert breached_row is not None
    assert (breached_row.next_clock_status, breached_row.next_clock_level) == (ClockStatus.BREACHED, 3)
    assert breached_row.next_clock_owner == OwningLine.CONNECTSOFT
