"""Reports (DESIGN.md §12) on a seeded read model whose answers are worked out by hand below,
on SQLite and on PostgreSQL. The HTTP tests (test_reports_api.py) reuse `seed_reports` and
the expected figures, so JSON, CSV and both databases must agree with these comments.

The seed: March 2026, times UTC. MTTA = acknowledged - received; MTTR = resolved - received
- waiting; "FR" is the binding first-response clock; "HO" is ConnectSoft's response to a
partner's handoff (ConnectSoft's first response on a partner ticket).

| ticket | customer (tier) product, Sev | received | clocks (line) | MTTA | MTTR | escalations | outage |
|---|---|---|---|---|---|---|---|
| A | acme (P) identity 1 | 03-02 08:30 | FR met (cs), ack met | 20 | 240 | crit L3 | 08:30-10:30 |
| B | acme (P) identity 1 | 03-02 09:00 | FR breached (cs) | 300 | open | crit L3, esc L4 | 09:00-10:00 |
| N | acme (P) identity 1 | 03-02 10:15 | FR met (cs) | 10 | 60 | crit L3 | 10:15-11:00 |
| C | acme (P) audit 3 | 03-04 09:00 | FR met (cs), resolution | 60 | 360-120 wait = 240 | | |
| D | acme (P) audit 3, reopened | 03-05 09:00 | FR met (cs) | 30 | 03-06 09:00: 1440 | esc L2 | |
| L | acme (P) audit 1 | 02-28 22:00 | FR breached (cs) | | | crit L3, esc L4 | 02-28 22:00-03-01 02:00 |
| E | globex (S) config 3 | 03-09 09:00 | FR breached (cs) | | closed unresolved | esc L2 | |
| F | globex (S) bot 4 | 03-10 09:00 | FR running | | | | |
| M | globex (S) config 1 | 03-31 20:00 | FR running | | | crit L2 | 03-31 20:00-(open) |
| G | initech (B) identity 3 | 03-11 09:00 | FR met, not binding | 120 | | | |
| H | contoso (P, northwind) 2 | 03-11 09:00 | FR breached (partner), HO met | 270 | 480 | | |
| I | contoso (P, northwind) 3 | 03-12 09:00 | FR met (partner), HO breached | 45 | | esc L3 | |
| J | umbrella (S, bespoke) 4 | 03-16 09:00 | FR met (cs) | 480 | 1440-60 wait = 1380 | | |
| K | umbrella (S, bespoke) 1 | 03-31 23:00 | FR running | | | crit L2 | 03-31 23:00-04-01 01:00 |

B's outage lies inside A's and N's overlaps A's end: acme identity is down 08:30-11:00 once.
L's outage crosses midnight at the end of February, K's at the end of March.

Events that must not count: `opened` at L1 on every ticket, B's `sla_breached` at L3, H's
`handed_off` at L2, and `critical_incident`/`escalated` events of L (received in February).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import report_sql, sla_report, uptime_report
from store.clock_outcomes import (
    ClockRow,
    clock_rows,
    record_clocks,
    record_ticket_facts,
    refresh_report_rollups,
)
from store.db import Contract, Ticket, TicketClockRecord
from store.demo_catalog import seed_demo_catalog
from store.report_sql import ReportRangeError
from store.sla_report import ReportGroupBy, SlaGroup
from store.tickets import record_events, upsert_ticket_row
from store.uptime_report import UptimeRow
from tests.factories import opened_ticket
from workflows import machine
from workflows.enums import (
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
from workflows.models import TicketEvent, TicketRow
from workflows.permissions import TicketScope

Sessionmaker = async_sessionmaker[AsyncSession]

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
# "Now" for the uptime tests: M's outage is still open.
NOW = datetime(2026, 4, 15, tzinfo=UTC)
# Contoso's contract sets its own uptime target (overrides.uptime).
CONTOSO_UPTIME = 99.95


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def mar(day: int, hour: int, minute: int = 0) -> datetime:
    return at(3, day, hour, minute)


CUSTOMERS: dict[str, tuple[Tier, ProductType, str | None]] = {
    "acme": (Tier.PREMIUM, ProductType.PLATFORM, None),
    "globex": (Tier.STANDARD, ProductType.PLATFORM, None),
    "initech": (Tier.BASIC, ProductType.PLATFORM, None),
    "umbrella": (Tier.STANDARD, ProductType.BESPOKE, None),
    "contoso": (Tier.PREMIUM, ProductType.PARTNER_DELIVERED, "northwind"),
}

CS, PARTNER = OwningLine.CONNECTSOFT, OwningLine.PARTNER
MET, BREACHED, RUNNING = ClockStatus.MET, ClockStatus.BREACHED, ClockStatus.RUNNING
FR, HO, ACK, RES = (
    ClockKind.FIRST_RESPONSE,
    ClockKind.HANDOFF_RESPONSE,
    ClockKind.ESCALATION_ACK,
    ClockKind.RESOLUTION,
)


@dataclass
class Clock:
    kind: ClockKind
    line: OwningLine
    status: ClockStatus
    started_at: datetime
    minutes: int = 60
    stopped_at: datetime | None = None
    binding: bool = True
    paused_seconds: float = 0


@dataclass
class Seeded:
    ticket_id: str
    customer_id: str
    product: Product
    severity: int
    received_at: datetime
    clocks: list[Clock]
    events: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    status: TicketStatus = TicketStatus.ACKNOWLEDGED
    level: int = 1
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    waiting_seconds: float = 0
    outage: tuple[datetime, datetime | None] | None = None


def crit(level: int, line: OwningLine = CS) -> tuple[str, int, dict[str, str]]:
    return ("critical_incident", level, {"trigger": "critical_at_intake", "line": line.value})


def esc(level: int) -> tuple[str, int, dict[str, str]]:
    return ("escalated", level, {"trigger": "sla_breach", "from_level": str(level - 1)})


SEED: list[Seeded] = [
    Seeded(
        "A", "acme", Product.IDENTITY, 1, mar(2, 8, 30),
        [
            Clock(FR, CS, MET, mar(2, 8, 30), stopped_at=mar(2, 8, 50)),
            Clock(ACK, CS, MET, mar(2, 8, 30), stopped_at=mar(2, 8, 50)),
        ],
        [crit(3)], TicketStatus.RESOLVED, 3, mar(2, 8, 50), mar(2, 12, 30),
        outage=(mar(2, 8, 30), mar(2, 10, 30)),
    ),
    Seeded(
        "B", "acme", Product.IDENTITY, 1, mar(2, 9),
        [Clock(FR, CS, BREACHED, mar(2, 9), stopped_at=mar(2, 10))],
        [crit(3), ("sla_breached", 3, {"line": "connectsoft"}), esc(4)],
        TicketStatus.ACKNOWLEDGED, 4, mar(2, 14),
        outage=(mar(2, 9), mar(2, 10)),
    ),
    Seeded(
        "N", "acme", Product.IDENTITY, 1, mar(2, 10, 15),
        [Clock(FR, CS, MET, mar(2, 10, 15), stopped_at=mar(2, 10, 25))],
        [crit(3)], TicketStatus.RESOLVED, 3, mar(2, 10, 25), mar(2, 11, 15),
        outage=(mar(2, 10, 15), mar(2, 11)),
    ),
    Seeded(
        "C", "acme", Product.AUDIT, 3, mar(4, 9),
        [
            Clock(FR, CS, MET, mar(4, 9), 480, stopped_at=mar(4, 10)),
            Clock(RES, CS, MET, mar(4, 9), 2400, stopped_at=mar(4, 15), paused_seconds=7200),
        ],
        [("waiting_on_customer", 1, {}), ("resumed", 1, {})],
        TicketStatus.RESOLVED, 1, mar(4, 10), mar(4, 15), waiting_seconds=7200,
    ),
    Seeded(
        "D", "acme", Product.AUDIT, 3, mar(5, 9),
        [Clock(FR, CS, MET, mar(5, 9), 480, stopped_at=mar(5, 9, 30))],
        [("escalated", 2, {"trigger": "requires_technical_expertise"}), ("resolved", 2, {}),
         ("reopened", 2, {}), ("resolved", 2, {})],
        TicketStatus.RESOLVED, 2, mar(5, 9, 30), mar(6, 9),
    ),
    Seeded(
        "L", "acme", Product.AUDIT, 1, at(2, 28, 22),
        [Clock(FR, CS, BREACHED, at(2, 28, 22), stopped_at=at(2, 28, 23))],
        [crit(3), esc(4)], TicketStatus.OPEN, 4,
        outage=(at(2, 28, 22), mar(1, 2)),
    ),
    Seeded(
        "E", "globex", Product.CONFIG, 3, mar(9, 9),
        [Clock(FR, CS, BREACHED, mar(9, 9), 960, stopped_at=mar(10, 17))],
        [esc(2), ("closed", 2, {})], TicketStatus.CLOSED, 2,
    ),
    Seeded(
        "F", "globex", Product.BOT, 4, mar(10, 9),
        [Clock(FR, CS, RUNNING, mar(10, 9), 1440)], status=TicketStatus.OPEN,
    ),
    Seeded(
        "M", "globex", Product.CONFIG, 1, mar(31, 20),
        [Clock(FR, CS, RUNNING, mar(31, 20), 240)], [crit(2)], TicketStatus.OPEN, 2,
        outage=(mar(31, 20), None),
    ),
    Seeded(
        "G", "initech", Product.IDENTITY, 3, mar(11, 9),
        [Clock(FR, CS, MET, mar(11, 9), 1440, stopped_at=mar(11, 11), binding=False)],
        acknowledged_at=mar(11, 11),
    ),
    Seeded(
        "H", "contoso", Product.PARTNER_SOLUTION, 2, mar(11, 9),
        [
            Clock(FR, PARTNER, BREACHED, mar(11, 9), 240, stopped_at=mar(11, 13)),
            Clock(HO, CS, MET, mar(11, 14), 240, stopped_at=mar(11, 14, 30)),
        ],
        [("handed_off", 2, {"category": "platform_bug"})],
        TicketStatus.RESOLVED, 2, mar(11, 13, 30), mar(11, 17),
    ),
    Seeded(
        "I", "contoso", Product.PARTNER_SOLUTION, 3, mar(12, 9),
        [
            Clock(FR, PARTNER, MET, mar(12, 9), 480, stopped_at=mar(12, 9, 45)),
            Clock(HO, CS, BREACHED, mar(12, 10), 480, stopped_at=mar(13, 10)),
        ],
        [esc(3)], TicketStatus.ACKNOWLEDGED, 3, mar(12, 9, 45),
    ),
    Seeded(
        "J", "umbrella", Product.BESPOKE, 4, mar(16, 9),
        [Clock(FR, CS, MET, mar(16, 9), 480, stopped_at=mar(16, 17))],
        status=TicketStatus.RESOLVED, acknowledged_at=mar(16, 17), resolved_at=mar(17, 9),
        waiting_seconds=3600,
    ),
    Seeded(
        "K", "umbrella", Product.BESPOKE, 1, mar(31, 23),
        [Clock(FR, CS, RUNNING, mar(31, 23), 480)], [crit(2)], TicketStatus.OPEN, 2,
        outage=(mar(31, 23), at(4, 1, 1)),
    ),
]  # fmt: skip


def ticket_row(seeded: Seeded, updated_at: datetime) -> TicketRow:
    tier, product_type, partner_id = CUSTOMERS[seeded.customer_id]
    return TicketRow(
        ticket_id=seeded.ticket_id,
        workflow_id=f"ticket-{seeded.ticket_id}",
        customer_id=seeded.customer_id,
        partner_id=partner_id,
        contract_id=f"ctr-{seeded.customer_id}",
        policy_version="2026.11-2",
        title=f"ticket {seeded.ticket_id}",
        product=seeded.product,
        product_type=product_type,
        tier=tier,
        severity=Severity(seeded.severity),
        status=seeded.status,
        level=seeded.level,
        owning_line=PARTNER if partner_id else CS,
        received_at=seeded.received_at,
        response_due=None,
        sla_breached=False,
        updated_at=updated_at,
    )


def seeded_clock_rows(seeded: Seeded) -> list[ClockRow]:
    return [
        ClockRow(
            clock_no=no,
            kind=clock.kind,
            line=clock.line,
            level=seeded.level,
            target_minutes=clock.minutes,
            calendar=CoverageCalendar.ALWAYS,
            binding=clock.binding,
            started_at=clock.started_at,
            due_at=clock.started_at + timedelta(minutes=clock.minutes),
            stopped_at=clock.stopped_at,
            status=clock.status,
            paused_seconds=clock.paused_seconds,
        )
        for no, clock in enumerate(seeded.clocks)
    ]


async def seed_reports(sessionmaker: Sessionmaker) -> None:
    """The table above, written the way the sync activity writes it, one ticket per transaction."""
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
    async with sessionmaker.begin() as session:
        # Not yet a TargetOverrides field: written into the contract's overrides JSON directly.
        await session.execute(
            update(Contract)
            .where(Contract.customer_id == "contoso")
            .values(overrides={uptime_report.UPTIME_OVERRIDE_FIELD: CONTOSO_UPTIME})
        )
    for seeded in SEED:
        updated_at = seeded.received_at + timedelta(days=3)
        events = [
            TicketEvent(seq=1, at=seeded.received_at, kind="opened", summary="opened", level=1),
            *(
                TicketEvent(
                    seq=seq, at=seeded.received_at, kind=kind, summary=kind, level=level, detail=detail
                )
                for seq, (kind, level, detail) in enumerate(seeded.events, start=2)
            ),
        ]
        async with sessionmaker.begin() as session:
            await upsert_ticket_row(session=session, row=ticket_row(seeded, updated_at))
            await record_events(session=session, ticket_id=seeded.ticket_id, events=events)
            await record_clocks(
                session=session,
                ticket_id=seeded.ticket_id,
                updated_at=updated_at,
                clocks=seeded_clock_rows(seeded),
            )
            await record_ticket_facts(
                session=session,
                ticket_id=seeded.ticket_id,
                updated_at=updated_at,
                acknowledged_at=seeded.acknowledged_at,
                resolved_at=seeded.resolved_at,
                waiting_seconds=seeded.waiting_seconds,
                outage_started_at=seeded.outage[0] if seeded.outage else None,
                outage_ended_at=seeded.outage[1] if seeded.outage else None,
            )


def group(
    key: str | None,
    tickets: int,
    met: int,
    breached: int,
    attainment: float | None,
    p50: float | None,
    p90: float | None,
    mttr: float | None,
    l2: int = 0,
    l3: int = 0,
    l4: int = 0,
) -> SlaGroup:
    return SlaGroup(
        key=key,
        tickets=tickets,
        first_response_met=met,
        first_response_breached=breached,
        attainment_pct=attainment,
        mtta_p50_minutes=p50,
        mtta_p90_minutes=p90,
        mttr_mean_minutes=mttr,
        escalations={"2": l2, "3": l3, "4": l4},
    )


# p50/p90 are nearest-rank: the value at rank ceil(p/100 * n) of the sorted times.
EXPECTED_SLA: dict[ReportGroupBy, list[SlaGroup]] = {
    ReportGroupBy.TIER: [
        # G: its only clock is not binding, so no attainment; MTTA [120].
        group("basic", 1, 0, 0, None, 120, 120, None),
        # A, B, N, C, D, H, I. Met: A, N, C, D, H's HO, I's FR = 6; breached: B, H's FR,
        # I's HO = 3; 6/9. MTTA [10, 20, 30, 45, 60, 270, 300]: rank 4 of 7 = 45, rank
        # ceil(6.3) = 7 = 300. MTTR (240 + 60 + 240 + 1440 + 480) / 5 = 492. Escalations:
        # D L2; A, B, N crit L3 and I L3; B L4.
        group("premium", 7, 6, 3, 66.67, 45, 300, 492, l2=1, l3=4, l4=1),
        # E, F, M, J, K. Met J, breached E (F, M, K still running): 1/2. MTTA [480].
        # MTTR J 1380. Escalations: E, M, K at L2.
        group("standard", 5, 1, 1, 50.0, 480, 480, 1380, l2=3),
    ],
    ReportGroupBy.LINE: [
        # Every ticket but H and I's partner FR: A, B, N, C, D, E, F, M, G, J, K by their FR,
        # H and I by their HO = 13. Met A, N, C, D, J, H's HO = 6; breached B, E, I's HO = 3.
        # MTTA [10, 20, 30, 45, 60, 120, 270, 300, 480]: rank 5 of 9 = 60, rank 9 = 480.
        # MTTR (240 + 60 + 240 + 1440 + 1380 + 480) / 6 = 640. Escalations: D, E, M, K at
        # L2; A, B, N, I at L3; B at L4.
        group("connectsoft", 13, 6, 3, 66.67, 60, 480, 640, l2=4, l3=4, l4=1),
        # H and I: I's FR met, H's FR breached. MTTA [45, 270]: rank 1 = 45, rank 2 = 270.
        # MTTR H 480. The ladder is ConnectSoft's: no escalations count here.
        group("partner", 2, 1, 1, 50.0, 45, 270, 480),
    ],
    ReportGroupBy.PARTNER: [
        group("northwind", 2, 2, 2, 50.0, 45, 270, 480, l3=1),
        # The rest: met A, N, C, D, J = 5; breached B, E = 2. MTTA [10, 20, 30, 60, 120,
        # 300, 480]: rank 4 = 60, rank 7 = 480. MTTR (240+60+240+1440+1380)/5 = 672.
        group(None, 11, 5, 2, 71.43, 60, 480, 672, l2=4, l3=3, l4=1),
    ],
}

# What each principal's reach leaves of the tier report.
EXPECTED_SCOPED_TIER: dict[str, list[SlaGroup]] = {
    # H and I: met H's HO and I's FR, breached H's FR and I's HO.
    "partner": [group("premium", 2, 2, 2, 50.0, 45, 270, 480, l3=1)],
    # A, B, N, C, D: met 4, breached B. MTTA [10, 20, 30, 60, 300]: rank 3 = 30, rank 5 =
    # 300. MTTR (240 + 60 + 240 + 1440) / 4 = 495.
    "customer": [group("premium", 5, 4, 1, 80.0, 30, 300, 495, l2=1, l3=3, l4=1)],
}

MARCH_MINUTES = 31 * 24 * 60  # 44,640


def uptime(
    customer: str,
    product: Product,
    availability: float,
    down: float,
    target: float | None,
    source: str | None,
    breached: bool | None,
    left: float | None,
) -> UptimeRow:
    return UptimeRow(
        customer_id=customer,
        product=product,
        availability_pct=availability,
        downtime_minutes=down,
        target_pct=target,
        target_source=source,
        breached=breached,
        allowed_downtime_left_minutes=left,
    )


EXPECTED_UPTIME_MARCH = [
    # L's outage crosses midnight into March 1: 00:00-02:00 counts here, 120 min. Premium
    # 99.9% allows 44.64 min. 100 * (1 - 120/44640) = 99.7312.
    uptime("acme", Product.AUDIT, 99.7312, 120, 99.9, "tier", True, 0),
    # A 08:30-10:30, B 09:00-10:00 inside it, N 10:15-11:00 overlapping its end: one island,
    # 08:30-11:00 = 150 min (not 120 + 60 + 45). 100 * (1 - 150/44640) = 99.664.
    uptime("acme", Product.IDENTITY, 99.664, 150, 99.9, "tier", True, 0),
    # No outage; the contract's own 99.95% allows 22.32 min.
    uptime("contoso", Product.PARTNER_SOLUTION, 100, 0, CONTOSO_UPTIME, "contract", False, 22.32),
    # Standard 99.5% allows 223.2 min.
    uptime("globex", Product.BOT, 100, 0, 99.5, "tier", False, 223.2),
    # M's outage is still open: 03-31 20:00 to the month's end, 240 min > 223.2.
    uptime("globex", Product.CONFIG, 99.4624, 240, 99.5, "tier", True, 0),
    # Basic platform: no uptime promised.
    uptime("initech", Product.IDENTITY, 100, 0, None, None, None, None),
    # K's outage crosses midnight into April: 23:00-24:00 counts here, 60 min. Bespoke 99.0%
    # allows 446.4 min, 386.4 left. 100 * (1 - 60/44640) = 99.8656.
    uptime("umbrella", Product.BESPOKE, 99.8656, 60, 99.0, "tier", False, 386.4),
]


async def sla(sessionmaker: Sessionmaker, group_by: ReportGroupBy, **scope: Any) -> list[SlaGroup]:
    async with sessionmaker() as session:
        return await sla_report.sla_report(
            session=session, start=MARCH[0], end=MARCH[1], group_by=group_by, **scope
        )


# --- SLA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", list(EXPECTED_SLA))
async def test_sla_report_matches_the_hand_worked_figures(
    sessionmaker: Sessionmaker, group_by: ReportGroupBy
) -> None:
    await seed_reports(sessionmaker)

    assert await sla(sessionmaker, group_by) == EXPECTED_SLA[group_by]


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        (ReportGroupBy.SEVERITY, ["1", "2", "3", "4"]),
        (ReportGroupBy.PRODUCT, ["audit", "bespoke", "bot", "config", "identity", "partner_solution"]),
        (ReportGroupBy.CUSTOMER, ["acme", "contoso", "globex", "initech", "umbrella"]),
        (ReportGroupBy.LEVEL, ["1", "2", "3", "4"]),
    ],
)
async def test_every_grouping_counts_each_march_ticket_once(
    sessionmaker: Sessionmaker, group_by: ReportGroupBy, keys: list[str]
) -> None:
    await seed_reports(sessionmaker)

    groups = await sla(sessionmaker, group_by)

    assert [g.key for g in groups] == keys
    # 14 seeded, L received in February.
    assert sum(g.tickets for g in groups) == 13
    # Met A, N, C, D, J, H's HO, I's FR; breached B, E, H's FR, I's HO.
    assert sum(g.first_response_met for g in groups) == 7
    assert sum(g.first_response_breached for g in groups) == 4


async def test_sla_by_severity_sev1_is_a_n_b_m_k(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    sev1 = (await sla(sessionmaker, ReportGroupBy.SEVERITY))[0]

    # A and N met, B breached; M and K still running. MTTA [10, 20, 300]: rank 2 = 20, rank 3 =
    # 300. MTTR (240 + 60) / 2 = 150. Escalations: M, K L2; A, B, N L3; B L4.
    assert sev1 == group("1", 5, 2, 1, 66.67, 20, 300, 150, l2=2, l3=3, l4=1)


@pytest.mark.parametrize(("scope", "who"), [(TicketScope(partner_id="northwind"), "partner"),
                                            (TicketScope(customer_id="acme"), "customer")])  # fmt: skip
async def test_partner_and_customer_see_only_their_own_tickets(
    sessionmaker: Sessionmaker, scope: TicketScope, who: str
) -> None:
    await seed_reports(sessionmaker)

    assert await sla(sessionmaker, ReportGroupBy.TIER, scope=scope) == EXPECTED_SCOPED_TIER[who]


async def test_period_is_half_open_on_received_at(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    async with sessionmaker() as session:
        # From A's exact intake to B's: A only.
        only_a = await sla_report.sla_report(
            session=session, start=mar(2, 8, 30), end=mar(2, 9), group_by=ReportGroupBy.CUSTOMER
        )
        february = await sla_report.sla_report(
            session=session, start=at(2, 1, 0), end=MARCH[0], group_by=ReportGroupBy.CUSTOMER
        )

    assert [(g.key, g.tickets, g.first_response_met) for g in only_a] == [("acme", 1, 1)]
    # L: breached, escalations L3 and L4.
    assert february == [group("acme", 1, 0, 1, 0.0, None, None, None, l3=1, l4=1)]


async def test_empty_period_has_no_groups(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    async with sessionmaker() as session:
        groups = await sla_report.sla_report(
            session=session, start=at(6, 1, 0), end=at(7, 1, 0), group_by=ReportGroupBy.TIER
        )

    assert groups == []


@pytest.mark.parametrize(
    ("start", "end", "rule"),
    [
        (MARCH[1], MARCH[0], "report_period_order"),
        (MARCH[0], MARCH[0], "report_period_order"),
        (MARCH[0], MARCH[0] + timedelta(days=367), "report_period_too_long"),
        (datetime(1999, 12, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC), "report_period_years"),
        (datetime(2999, 12, 1, tzinfo=UTC), datetime(3000, 1, 2, tzinfo=UTC), "report_period_years"),
        # Year 1 an hour east of UTC is before year 1 in UTC: not even a datetime there.
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), MARCH[0], "report_period_years"),
    ],
)
def test_period_must_be_ordered_and_at_most_a_year(start: datetime, end: datetime, rule: str) -> None:
    with pytest.raises(ReportRangeError) as refused:
        report_sql.check_period(start, end)

    assert refused.value.rule == rule


def test_naive_period_bounds_are_utc() -> None:
    start, end = report_sql.check_period(datetime(2026, 3, 1), datetime(2026, 4, 1, 2, tzinfo=UTC))

    assert start == MARCH[0] and end.tzinfo is not None


# --- Weekly chart data --------------------------------------------------------------------------


async def test_weeks_split_breaches_by_line(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    async with sessionmaker() as session:
        weeks = await sla_report.sla_weeks(session=session, start=MARCH[0], end=MARCH[1])

    # March 1 2026 is a Sunday: its week starts Monday February 23; the last week starts
    # Monday March 30.
    starts = [w.week_start.isoformat() for w in weeks]
    assert starts == ["2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    by_week = {
        w.week_start.isoformat(): (w.met, w.breached_by_line[PARTNER], w.breached_by_line[CS]) for w in weeks
    }
    assert by_week == {
        "2026-02-23": (0, 0, 0),
        # A, N, C, D met; B breached.
        "2026-03-02": (4, 0, 1),
        # H's HO and I's FR met; H's FR (partner), E and I's HO (ConnectSoft) breached.
        "2026-03-09": (2, 1, 2),
        "2026-03-16": (1, 0, 0),
        "2026-03-23": (0, 0, 0),
        "2026-03-30": (0, 0, 0),
    }
    assert [w.attainment_pct for w in weeks] == [None, 80.0, 40.0, 100.0, None, None]


# --- Uptime -------------------------------------------------------------------------------------


async def uptime_rows(sessionmaker: Sessionmaker, month: str, **filters: Any) -> list[UptimeRow]:
    async with sessionmaker() as session:
        return await uptime_report.uptime_report(session=session, month=month, now=NOW, **filters)


async def test_uptime_merges_overlaps_and_splits_outages_at_month_ends(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    assert await uptime_rows(sessionmaker, "2026-03") == EXPECTED_UPTIME_MARCH


async def test_outage_crossing_into_a_month_counts_its_part_there(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    april = {(r.customer_id, r.product): r for r in await uptime_rows(sessionmaker, "2026-04")}
    february = await uptime_rows(sessionmaker, "2026-02")

    # K: 00:00-01:00 on April 1; April (30 days) allows 432 min at 99.0%.
    assert april["umbrella", Product.BESPOKE].downtime_minutes == 60
    assert april["umbrella", Product.BESPOKE].allowed_downtime_left_minutes == 372
    # M's open outage counts until now, April 15 00:00: 14 days.
    assert april["globex", Product.CONFIG].downtime_minutes == 14 * 24 * 60
    assert april["globex", Product.CONFIG].availability_pct == round(100 * (1 - 14 / 30), 4)
    assert april["acme", Product.IDENTITY].downtime_minutes == 0
    # February knows only L (22:00-24:00 on the 28th) and no product filed later.
    assert february == [
        uptime("acme", Product.AUDIT, round(100 * (1 - 120 / 40320), 4), 120, 99.9, "tier", True, 0)
    ]


async def test_uptime_for_one_customer_and_by_reach(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)

    acme = await uptime_rows(sessionmaker, "2026-03", customer_id="acme")
    partner = await uptime_rows(sessionmaker, "2026-03", scope=TicketScope(partner_id="northwind"))
    customer = await uptime_rows(sessionmaker, "2026-03", scope=TicketScope(customer_id="acme"))
    outside = await uptime_rows(
        sessionmaker, "2026-03", scope=TicketScope(customer_id="acme"), customer_id="globex"
    )

    assert acme == EXPECTED_UPTIME_MARCH[:2]
    assert customer == EXPECTED_UPTIME_MARCH[:2]
    assert partner == [EXPECTED_UPTIME_MARCH[2]]
    assert outside == []


@pytest.mark.parametrize("month", ["2026-3", "2026-13", "26-03", "1999-12", "march", "2026-03-01"])
def test_month_must_be_yyyy_mm(month: str) -> None:
    with pytest.raises(ReportRangeError) as refused:
        uptime_report.month_bounds(month)

    assert refused.value.rule == "report_month"


def test_months_are_utc_calendar_months() -> None:
    assert uptime_report.month_bounds("2028-02") == (
        datetime(2028, 2, 1, tzinfo=UTC),
        datetime(2028, 3, 1, tzinfo=UTC),
    )
    assert uptime_report.month_bounds("2026-12")[1] == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tier", "product_type", "overrides", "expected"),
    [
        ("standard", "platform", {}, (99.5, "tier")),
        ("premium", "platform", None, (99.9, "tier")),
        ("basic", "bespoke", {}, (99.0, "tier")),
        ("basic", "platform", {}, (None, None)),
        ("basic", "platform", {"uptime": 98.5}, (98.5, "contract")),
        # Not a percentage: the tier's target stands.
        ("standard", "platform", {"uptime": "99.99"}, (99.5, "tier")),
        ("standard", "platform", {"uptime": 120}, (99.5, "tier")),
        ("standard", "platform", {"uptime": True}, (99.5, "tier")),
        (None, None, None, (None, None)),
    ],
)
def test_uptime_target_is_the_contracts_own_or_the_tiers(
    tier: str | None, product_type: str | None, overrides: dict[str, Any] | None, expected: tuple[Any, Any]
) -> None:
    assert uptime_report.uptime_target(tier, product_type, overrides) == expected


# --- Writing clock outcomes ---------------------------------------------------------------------


async def clocks_of(sessionmaker: Sessionmaker, ticket_id: str) -> list[tuple[int, str, datetime | None]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(TicketClockRecord.clock_no, TicketClockRecord.status, TicketClockRecord.stopped_at)
            .where(TicketClockRecord.ticket_id == ticket_id)
            .order_by(TicketClockRecord.clock_no)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def write_sync(
    sessionmaker: Sessionmaker, seeded: Seeded, updated_at: datetime, *, fail_after_clocks: bool = False
) -> None:
    async with sessionmaker.begin() as session:
        await upsert_ticket_row(session=session, row=ticket_row(seeded, updated_at))
        await record_clocks(
            session=session,
            ticket_id=seeded.ticket_id,
            updated_at=updated_at,
            clocks=seeded_clock_rows(seeded),
        )
        if fail_after_clocks:
            raise ConnectionError("worker lost mid-sync")
        await record_ticket_facts(
            session=session,
            ticket_id=seeded.ticket_id,
            updated_at=updated_at,
            acknowledged_at=seeded.acknowledged_at,
            resolved_at=seeded.resolved_at,
            waiting_seconds=seeded.waiting_seconds,
            outage_started_at=None,
            outage_ended_at=None,
        )


async def test_a_sync_killed_mid_flight_leaves_nothing_and_its_retry_writes_once(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_demo_catalog_only(sessionmaker)
    a = SEED[0]

    with pytest.raises(ConnectionError):
        await write_sync(sessionmaker, a, mar(2, 9), fail_after_clocks=True)
    assert await clocks_of(sessionmaker, "A") == []
    await write_sync(sessionmaker, a, mar(2, 9))
    await write_sync(sessionmaker, a, mar(2, 9))

    assert await clocks_of(sessionmaker, "A") == [(0, "met", mar(2, 8, 50)), (1, "met", mar(2, 8, 50))]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(TicketClockRecord)) == 2


async def test_a_late_retry_of_an_older_sync_rolls_nothing_back(sessionmaker: Sessionmaker) -> None:
    await seed_demo_catalog_only(sessionmaker)
    # D resolved at 03-05 11:00 (its resolution clock met), reopened, resolution clock running.
    resolved = Seeded(
        "D", "acme", Product.AUDIT, 3, mar(5, 9),
        [Clock(FR, CS, MET, mar(5, 9), stopped_at=mar(5, 9, 30)),
         Clock(RES, CS, MET, mar(5, 9), 2400, stopped_at=mar(5, 11))],
        status=TicketStatus.RESOLVED, acknowledged_at=mar(5, 9, 30), resolved_at=mar(5, 11),
    )  # fmt: skip
    reopened = Seeded(
        "D", "acme", Product.AUDIT, 3, mar(5, 9),
        [Clock(FR, CS, MET, mar(5, 9), stopped_at=mar(5, 9, 30)),
         Clock(RES, CS, RUNNING, mar(5, 9), 2400)],
        status=TicketStatus.ACKNOWLEDGED, acknowledged_at=mar(5, 9, 30), resolved_at=None,
        waiting_seconds=60,
    )  # fmt: skip

    await write_sync(sessionmaker, resolved, mar(5, 11))
    await write_sync(sessionmaker, reopened, mar(5, 15))
    # The resolve sync's zombie attempt commits last.
    await write_sync(sessionmaker, resolved, mar(5, 11))

    assert await clocks_of(sessionmaker, "D") == [(0, "met", mar(5, 9, 30)), (1, "running", None)]
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, "D")
    assert ticket is not None
    assert (ticket.status, ticket.resolved_at, ticket.waiting_seconds) == ("acknowledged", None, 60)
    assert (ticket.connectsoft_response_clocks, ticket.connectsoft_responses_met) == (1, 1)


ROLLUPS = (
    "partner_response_clocks",
    "partner_responses_met",
    "partner_responses_breached",
    "connectsoft_response_clocks",
    "connectsoft_responses_met",
    "connectsoft_responses_breached",
    "escalations_l2",
    "escalations_l3",
    "escalations_l4",
)


async def rollups(sessionmaker: Sessionmaker) -> dict[str, tuple[int, ...]]:
    async with sessionmaker() as session:
        rows = await session.execute(select(Ticket.ticket_id, *(getattr(Ticket, name) for name in ROLLUPS)))
        return {ticket_id: tuple(values) for ticket_id, *values in rows}


async def test_each_sync_recounts_the_tickets_rollups_from_its_clocks_and_events(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_reports(sessionmaker)
    counted = await rollups(sessionmaker)
    async with sessionmaker.begin() as session:
        await session.execute(update(Ticket).values(dict.fromkeys(ROLLUPS, 0)))
        await refresh_report_rollups(session=session)

    # (partner: clocks, met, breached; ConnectSoft: clocks, met, breached; escalations L2-L4)
    assert counted["H"] == (1, 0, 1, 1, 1, 0, 0, 0, 0)
    assert counted["I"] == (1, 1, 0, 1, 0, 1, 0, 1, 0)
    # B: the sla_breached event is no escalation; its critical incident (L3) and breach (L4) are.
    assert counted["B"] == (0, 0, 0, 1, 0, 1, 0, 1, 1)
    # G: a best-effort clock is a response clock, but neither met nor breached.
    assert counted["G"] == (0, 0, 0, 1, 0, 0, 0, 0, 0)
    # F: still running.
    assert counted["F"] == (0, 0, 0, 1, 0, 0, 0, 0, 0)
    # Recounting every ticket at once (a backfill) gives the same figures.
    assert await rollups(sessionmaker) == counted


async def test_a_partners_critical_incident_notice_is_not_an_escalation(sessionmaker: Sessionmaker) -> None:
    await seed_demo_catalog_only(sessionmaker)
    # Handed back to the partner at L2, then raised to Sev 1: the partner's on-call is paged.
    ticket = Seeded(
        "P", "contoso", Product.PARTNER_SOLUTION, 1, mar(20, 9),
        [Clock(FR, PARTNER, MET, mar(20, 9), stopped_at=mar(20, 9, 10))],
        [crit(2, PARTNER), crit(3)], TicketStatus.ACKNOWLEDGED, 3, mar(20, 9, 10),
    )  # fmt: skip
    await write_sync(sessionmaker, ticket, mar(20, 10))
    async with sessionmaker.begin() as session:
        await record_events(
            session=session,
            ticket_id="P",
            events=[
                TicketEvent(seq=seq, at=mar(20, 9), kind=kind, summary=kind, level=level, detail=detail)
                for seq, (kind, level, detail) in enumerate(ticket.events, start=1)
            ],
        )
        await refresh_report_rollups(session=session, ticket_id="P")

    assert (await rollups(sessionmaker))["P"][-3:] == (0, 1, 0)


async def seed_demo_catalog_only(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)


async def test_machine_clocks_become_rows_a_report_counts(sessionmaker: Sessionmaker) -> None:
    """A Premium Sev 1 from the real machine, left unanswered past its hour: its first response
    and the L3 acknowledgement breach together; the report counts the first response once."""
    received = mar(2, 8)
    opened = opened_ticket("acme", 1, received)
    state = machine.open_ticket(opened).state
    state = machine.advance(state, received + timedelta(hours=2)).state
    rows = clock_rows(state.clocks)

    assert [(r.clock_no, r.kind, r.line, r.status) for r in rows][:2] == [
        (0, FR, CS, BREACHED),
        (1, ACK, CS, BREACHED),
    ]
    assert rows[0].target_minutes == 60 and rows[0].calendar == CoverageCalendar.ALWAYS
    assert rows[0].due_at == received + timedelta(hours=1) == rows[0].stopped_at

    await seed_demo_catalog_only(sessionmaker)
    updated_at = received + timedelta(hours=2)
    async with sessionmaker.begin() as session:
        await upsert_ticket_row(session=session, row=state.row(updated_at))
        await record_events(session=session, ticket_id=state.ticket_id, events=state.events)
        await record_clocks(session=session, ticket_id=state.ticket_id, updated_at=updated_at, clocks=rows)
        await record_ticket_facts(
            session=session,
            ticket_id=state.ticket_id,
            updated_at=updated_at,
            acknowledged_at=state.acknowledged_at,
            resolved_at=state.resolved_at,
            waiting_seconds=0,
            outage_started_at=None,
            outage_ended_at=None,
        )

    [premium] = await sla(sessionmaker, ReportGroupBy.TIER)
    assert (premium.key, premium.first_response_met, premium.first_response_breached) == ("premium", 0, 1)
    # Critical at intake to L3, then the breach climbs to L4.
    assert premium.escalations == {"2": 0, "3": 1, "4": 1}
