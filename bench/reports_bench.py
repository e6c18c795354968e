"""The reports (issue 8) on a big read model: 100,000 tickets with their clocks, escalation
events and outages, on SQLite and (with a URL) PostgreSQL.

Subject: each report query over a whole year of tickets (every seeded row), as the API runs
it. Baseline: `SELECT count(*)` over the same tickets (received in the same year), in the same
run and on the same database, interleaved round by round. The goal is absolute: well under a
second per report.

    python -m bench.reports_bench [--tickets 100000] [--rounds 5] [--postgres-url URL]

With no --postgres-url, ESCALATOR_TEST_POSTGRES_URL is used when set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.common import Result
from store import sla_report, uptime_report
from store.clock_outcomes import refresh_report_rollups
from store.db import (
    Contract,
    Customer,
    Partner,
    Ticket,
    TicketClockRecord,
    TicketEventRecord,
    async_database_url,
    make_engine,
    make_sessionmaker,
    migrate,
)
from store.demo_catalog import seed_demo_catalog
from workflows.enums import ClockKind, ClockStatus, OwningLine, Product, ProductType, Tier
from workflows.permissions import TicketScope

YEAR = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
CUSTOMERS = 500
PARTNERS = 10
CHUNK = 5_000
GOAL = "well under 1 s (issue 8)"

PLATFORM_PRODUCTS = (Product.IDENTITY, Product.AUDIT, Product.CONFIG, Product.BOT)


def _catalog(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    partners = [
        {"id": f"p{n:02d}", "name": f"Partner {n}", "connectsoft_tier": "premium"} for n in range(PARTNERS)
    ]
    customers, contracts = [], []
    for n in range(CUSTOMERS):
        customer_id = f"c{n:04d}"
        partner_id = f"p{n % PARTNERS:02d}" if n % 10 == 0 else None
        product_type = (
            ProductType.PARTNER_DELIVERED
            if partner_id
            else rng.choice((ProductType.PLATFORM, ProductType.PLATFORM, ProductType.BESPOKE))
        )
        customers.append({"id": customer_id, "name": f"Customer {n}", "active": True})
        contracts.append(
            {
                "id": f"ctr-{customer_id}",
                "customer_id": customer_id,
                "active": True,
                "tier": rng.choice(list(Tier)).value,
                "product_type": product_type.value,
                "timezone": "UTC",
                "country": None,
                "coverage_24x7": False,
                "partner_id": partner_id,
                "project": None,
                "overrides": {"uptime": 99.95} if n % 7 == 0 else {},
                "revision": 1,
                "updated_at": YEAR[0],
            }
        )
    return partners, customers, contracts


def _ticket_rows(
    count: int, contracts: list[dict[str, Any]], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Tickets spread over the year, written in the order they were received and with random
    ids, as intake makes them; each has a first-response clock (a partner ticket a second,
    ConnectSoft's, when handed off), and some have escalations and outages."""
    tickets, clocks, events = [], [], []
    span = int((YEAR[1] - YEAR[0]).total_seconds())
    instants = sorted(rng.randrange(span) for _ in range(count))
    for offset in instants:
        contract = rng.choice(contracts)
        partner_id = contract["partner_id"]
        product_type = contract["product_type"]
        product = (
            Product.PARTNER_SOLUTION
            if partner_id
            else Product.BESPOKE
            if product_type == ProductType.BESPOKE
            else rng.choice(PLATFORM_PRODUCTS)
        )
        received = YEAR[0] + timedelta(seconds=offset)
        severity = rng.choice((1, 2, 2, 3, 3, 3, 4, 4))
        ack_minutes = rng.expovariate(1 / 90) if rng.random() < 0.9 else None
        resolved_minutes = (ack_minutes or 0) + rng.expovariate(1 / 2000) if rng.random() < 0.7 else None
        outage = severity == 1 and rng.random() < 0.5
        ticket_id = f"{rng.getrandbits(48):012x}"
        tickets.append(
            {
                "ticket_id": ticket_id,
                "workflow_id": f"ticket-{ticket_id}",
                "customer_id": contract["customer_id"],
                "partner_id": partner_id,
                "contract_id": contract["id"],
                "policy_version": "bench",
                "title": "bench",
                "product": product.value,
                "product_type": product_type,
                "tier": contract["tier"],
                "severity": severity,
                "status": "resolved" if resolved_minutes is not None else "acknowledged",
                "level": rng.choice((1, 1, 2, 3)),
                "owning_line": "partner" if partner_id else "connectsoft",
                "received_at": received,
                "response_due": received + timedelta(hours=4),
                "sla_breached": False,
                "partner_sla_breached": False,
                "updated_at": received,
                "acknowledged_at": None if ack_minutes is None else received + timedelta(minutes=ack_minutes),
                "resolved_at": None
                if resolved_minutes is None
                else received + timedelta(minutes=resolved_minutes),
                "waiting_seconds": rng.choice((0.0, 0.0, 0.0, rng.uniform(0, 7200))),
                "outage_started_at": received if outage else None,
                "outage_ended_at": received + timedelta(minutes=rng.uniform(5, 300)) if outage else None,
            }
        )
        lines = [OwningLine.PARTNER, OwningLine.CONNECTSOFT] if partner_id and rng.random() < 0.5 else []
        lines = lines or [OwningLine.PARTNER if partner_id else OwningLine.CONNECTSOFT]
        for clock_no, line in enumerate(lines):
            kind = ClockKind.HANDOFF_RESPONSE if clock_no else ClockKind.FIRST_RESPONSE
            status = rng.choices(
                (ClockStatus.MET, ClockStatus.BREACHED, ClockStatus.RUNNING, ClockStatus.CANCELLED),
                (80, 12, 5, 3),
            )[0]
            clocks.append(
                {
                    "ticket_id": ticket_id,
                    "clock_no": clock_no,
                    "kind": kind.value,
                    "line": line.value,
                    "level": 1,
                    "target_minutes": 240,
                    "calendar": "extended",
                    "binding": contract["tier"] != Tier.BASIC,
                    "started_at": received,
                    "due_at": received + timedelta(hours=4),
                    "stopped_at": None if status == ClockStatus.RUNNING else received + timedelta(hours=1),
                    "status": status.value,
                    "paused_seconds": 0.0,
                    "updated_at": received,
                }
            )
        events.append(
            {"ticket_id": ticket_id, "seq": 1, "at": received, "kind": "opened", "summary": "", "actor": "b",
             "level": 1, "detail": {}}
        )  # fmt: skip
        if rng.random() < 0.25:
            level = rng.choice((2, 3, 4))
            escalation = "critical_incident" if severity == 1 else "escalated"
            detail = {"line": "connectsoft"} if severity == 1 else {}
            events.append(
                {"ticket_id": ticket_id, "seq": 2, "at": received, "kind": escalation, "summary": "",
                 "actor": "b", "level": level, "detail": detail}
            )  # fmt: skip
    return tickets, clocks, events


async def _bulk(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(table), rows[start : start + CHUNK])


async def seed(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> tuple[float, float]:
    """Bulk-insert the catalog and `count` tickets, then count every ticket's rollups from its
    clocks and events in one statement (as a backfill would); seconds taken by each."""
    rng = random.Random(2026)
    started = time.perf_counter()
    partners, customers, contracts = _catalog(rng)
    tickets, clocks, events = _ticket_rows(count, contracts, rng)
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    async with sessionmaker.begin() as session:
        await _bulk(session, Partner, partners)
        await _bulk(session, Customer, customers)
        await _bulk(session, Contract, contracts)
        await _bulk(session, Ticket, tickets)
        await _bulk(session, TicketClockRecord, clocks)
        await _bulk(session, TicketEventRecord, events)
    inserted = time.perf_counter()
    async with sessionmaker.begin() as session:
        await refresh_report_rollups(session=session)
    rolled_up = time.perf_counter()
    async with sessionmaker() as session:
        # Fresh statistics, as a long-running database would have.
        await session.execute(text("ANALYZE"))
        await session.commit()
    return inserted - started, rolled_up - inserted


async def _elapsed_ms(fn: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Wall-clock and this process's CPU milliseconds of one call. On SQLite the query runs in
    this process, so its CPU time is the work done, whatever else the machine is running."""
    started, cpu = time.perf_counter(), time.process_time()
    await fn()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


async def measure(
    sessionmaker: async_sessionmaker[AsyncSession], backend: str, count: int, rounds: int
) -> list[Result]:
    start, end = YEAR

    async def baseline() -> object:
        async with sessionmaker() as session:
            return await session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.received_at >= start, Ticket.received_at < end)
            )

    def sla(group_by: sla_report.ReportGroupBy) -> Callable[[], Awaitable[object]]:
        async def query() -> object:
            async with sessionmaker() as session:
                return await sla_report.sla_report(session=session, start=start, end=end, group_by=group_by)

        return query

    async def weeks() -> object:
        async with sessionmaker() as session:
            return await sla_report.sla_weeks(session=session, start=start, end=end)

    async def uptime() -> object:
        async with sessionmaker() as session:
            return await uptime_report.uptime_report(session=session, month="2026-06", now=end)

    async def partner_sla() -> object:
        async with sessionmaker() as session:
            return await sla_report.sla_report(
                session=session,
                start=start,
                end=end,
                group_by=sla_report.ReportGroupBy.TIER,
                scope=TicketScope(partner_id="p03"),
            )

    subjects: dict[str, Callable[[], Awaitable[object]]] = {
        "sla group_by=tier": sla(sla_report.ReportGroupBy.TIER),
        "sla group_by=line": sla(sla_report.ReportGroupBy.LINE),
        "sla group_by=customer": sla(sla_report.ReportGroupBy.CUSTOMER),
        "sla, one partner's reach": partner_sla,
        "sla chart weeks": weeks,
        "uptime, one month": uptime,
    }
    counted = await baseline()
    assert counted == count, f"seeded {count} tickets, counted {counted}"
    cpu_covers = "the whole query" if backend == "sqlite" else "the client's share only"
    results = []
    for metric, subject in subjects.items():
        await subject()  # warm the caches and the statement cache once
        subject_best = baseline_best = subject_cpu = baseline_cpu = float("inf")
        for _ in range(rounds):
            wall, cpu = await _elapsed_ms(subject)
            subject_best, subject_cpu = min(subject_best, wall), min(subject_cpu, cpu)
            wall, cpu = await _elapsed_ms(baseline)
            baseline_best, baseline_cpu = min(baseline_best, wall), min(baseline_cpu, cpu)
        results.append(
            Result(
                name=f"reports/{backend}",
                metric=f"{metric}, {count:,} tickets",
                unit="ms",
                subject=subject_best,
                baseline=baseline_best,
                goal=GOAL,
                notes=[f"this process's CPU: {subject_cpu:,.1f} ms vs {baseline_cpu:,.1f} ms ({cpu_covers})"],
            )
        )
    return results


async def _on_sqlite(count: int, rounds: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(directory) / 'reports.db'}")
        try:
            return await _run(engine, "sqlite", count, rounds)
        finally:
            await engine.dispose()


async def _on_postgres(url: str, count: int, rounds: int) -> list[Result]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    parsed = async_database_url(url)
    admin = make_engine(parsed, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(parsed, connect_args={"server_settings": {"search_path": schema}})
    try:
        return await _run(engine, "postgresql", count, rounds)
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _run(engine: AsyncEngine, backend: str, count: int, rounds: int) -> list[Result]:
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    inserting, rolling_up = await seed(sessionmaker, count)
    results = await measure(sessionmaker, backend, count, rounds)
    results[0].notes.insert(
        0,
        f"seeded {count:,} tickets with clocks and events in {inserting:.1f} s (bulk inserts); "
        f"their rollups counted in {rolling_up:.1f} s (one UPDATE, as a backfill)",
    )
    return results


def run(tickets: int = 100_000, rounds: int = 5, postgres_url: str | None = None) -> list[Result]:
    """SQLite always; PostgreSQL too with a URL (or ESCALATOR_TEST_POSTGRES_URL)."""
    postgres_url = postgres_url or os.environ.get("ESCALATOR_TEST_POSTGRES_URL")
    results = asyncio.run(_on_sqlite(tickets, rounds))
    if postgres_url:
        results += asyncio.run(_on_postgres(postgres_url, tickets, rounds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports_bench", description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args(argv)
    for result in run(args.tickets, args.rounds, args.postgres_url):
        print(result.line(), flush=True)
        for note in result.notes:
            print(f"    {note}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
