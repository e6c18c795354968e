"""Reports and major incidents (issue 19, DESIGN.md §12, §13), on SQLite and on PostgreSQL: the
SLA report by incident, and the uptime report counting an incident's outage for every customer
with a ticket linked to it. The seed is test_reports.py's March, with two incidents on top:

| incident | products | opened - resolved | outage (given) | linked tickets |
|---|---|---|---|---|
| inc-identity | identity | 03-02 10:00 - 12:00 | (none: 10:00-12:00) | N (acme), G (initech), H (contoso) |
| inc-bespoke | bespoke | 03-16 08:30 - 10:00 | 08:00-09:30 | J (umbrella) |

N, G, H and J recorded no outage of their own but N's 10:15-11:00, which inc-identity covers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store import incidents as incident_store
from store import sla_report
from store.db import Incident, IncidentProduct, alembic_config, migrate
from store.scope import EVERY_TICKET
from store.sla_report import ReportGroupBy, SlaGroup
from store.tickets import upsert_ticket_row
from tests.factories import SUPPORT
from tests.fixtures_api import Stack
from tests.test_api_permissions import console_as
from tests.test_reports import (
    CONTOSO_UPTIME,
    EXPECTED_UPTIME_MARCH,
    MARCH,
    SEED,
    Sessionmaker,
    at,
    group,
    mar,
    seed_reports,
    ticket_row,
    uptime,
    uptime_rows,
)
from tests.test_reports_api import ADMIN, CUSTOMER, PARTNER, get, read_csv, sla_csv_rows, sla_json
from workflows.enums import Product, Severity
from workflows.incident_model import (
    IncidentOpened,
    IncidentRecord,
    IncidentState,
    IncidentStatus,
    ResolveIncident,
    UpdateKind,
)
from workflows.permissions import TicketScope

IDENTITY, BESPOKE = "inc-identity", "inc-bespoke"
LINKED = {"N": IDENTITY, "G": IDENTITY, "H": IDENTITY, "J": BESPOKE}


def incident_state(
    incident_id: str,
    product: Product,
    opened_at: Any,
    resolved_at: Any = None,
    *,
    outage_started_at: Any = None,
    outage_ended_at: Any = None,
) -> IncidentState:
    """The incident as its workflow holds it: opened, and resolved if `resolved_at`."""
    state = IncidentState.opened(
        IncidentOpened(
            incident_id=incident_id,
            title=f"{product.value} outage",
            description="down",
            products=[product],
            severity=Severity.CRITICAL,
            opened_by=SUPPORT,
            opened_at=opened_at,
            outage_started_at=outage_started_at,
        )
    )
    if resolved_at is not None:
        state.post(UpdateKind.RESOLUTION, "fixed", SUPPORT, resolved_at, outage_ended_at=outage_ended_at)
    return state


async def record(sessionmaker: Sessionmaker, state: IncidentState) -> None:
    async with sessionmaker.begin() as session:
        await incident_store.record_incident(session=session, record=IncidentRecord.of(state))


async def link(sessionmaker: Sessionmaker, links: dict[str, str]) -> None:
    """Link seeded tickets the way their next sync writes it: a newer row with `incident_id`."""
    for seeded in SEED:
        if seeded.ticket_id in links:
            row = ticket_row(seeded, seeded.received_at + timedelta(days=4))
            async with sessionmaker.begin() as session:
                await upsert_ticket_row(
                    session=session, row=row.model_copy(update={"incident_id": links[seeded.ticket_id]})
                )


async def seed_incident_reports(sessionmaker: Sessionmaker) -> None:
    await seed_reports(sessionmaker)
    # Opened, then resolved: the two writes its workflow makes.
    for incident in (
        incident_state(IDENTITY, Product.IDENTITY, mar(2, 10)),
        incident_state(IDENTITY, Product.IDENTITY, mar(2, 10), mar(2, 12)),
        incident_state(
            BESPOKE, Product.BESPOKE, mar(16, 8, 30), mar(16, 10),
            outage_started_at=mar(16, 8), outage_ended_at=mar(16, 9, 30),
        ),
    ):  # fmt: skip
        await record(sessionmaker, incident)
    await link(sessionmaker, LINKED)


EXPECTED_BY_INCIDENT = [
    # J: met, MTTA 480, MTTR 1440 - 60 waiting.
    group(BESPOKE, 1, 1, 0, 100.0, 480, 480, 1380),
    # N, G, H. Met N and H's HO, breached H's partner FR (G's only clock is not binding).
    # MTTA [10, 120, 270]: rank 2 = 120, rank 3 = 270. MTTR (N 60 + H 480) / 2. N's crit L3.
    group(IDENTITY, 3, 2, 1, 66.67, 120, 270, 270, l3=1),
    # The other nine of March: A, B, N... less N. Met A, C, D, I's FR; breached B, E, I's HO.
    # MTTA [20, 30, 45, 60, 300]: rank 3 = 45, rank 5 = 300. MTTR (A 240 + C 240 + D 1440) / 3.
    # Escalations: D, E, M, K at L2; A, B, I at L3; B at L4.
    group(None, 9, 4, 3, 57.14, 45, 300, 640, l2=4, l3=3, l4=1),
]

EXPECTED_BY_INCIDENT_SCOPED: dict[str, list[SlaGroup]] = {
    # Northwind's H (in inc-identity) and I (in none): the incident's group holds H alone.
    "partner": [
        group(IDENTITY, 1, 1, 1, 50.0, 270, 270, 480),
        group(None, 1, 1, 1, 50.0, 45, 45, None, l3=1),
    ],
    # acme's N (in inc-identity) and A, B, C, D. MTTA [20, 30, 60, 300]: rank 2 = 30, rank 4.
    "customer": [
        group(IDENTITY, 1, 1, 0, 100.0, 10, 10, 60, l3=1),
        group(None, 4, 3, 1, 75.0, 30, 300, 640, l2=1, l3=2, l4=1),
    ],
}
SCOPES = {"partner": TicketScope(partner_id="northwind"), "customer": TicketScope(customer_id="acme")}

ACME_AUDIT, ACME_IDENTITY, CONTOSO_SOLUTION, GLOBEX_BOT, GLOBEX_CONFIG, INITECH, UMBRELLA = (
    EXPECTED_UPTIME_MARCH
)
EXPECTED_UPTIME_WITH_INCIDENTS = [
    ACME_AUDIT,
    # A 08:30-10:30, B inside it, N 10:15-11:00 and inc-identity 10:00-12:00 over N: one island,
    # 08:30-12:00 = 210 min, not 150 + 120. 100 * (1 - 210/44640) = 99.5296.
    uptime("acme", Product.IDENTITY, 99.5296, 210, 99.9, "tier", True, 0),
    # H is a partner_solution ticket, linked to the identity incident: contoso's identity was
    # down 120 min with it (the contract's 99.95% allows 22.32), though H recorded no outage.
    uptime("contoso", Product.IDENTITY, 99.7312, 120, CONTOSO_UPTIME, "contract", True, 0),
    CONTOSO_SOLUTION,
    GLOBEX_BOT,
    GLOBEX_CONFIG,
    # G recorded no outage: inc-identity's 120 min are initech's (Basic: nothing promised).
    uptime("initech", Product.IDENTITY, 99.7312, 120, None, None, None, None),
    # K's 60 min and inc-bespoke's given 08:00-09:30 (not its 08:30-10:00): 150 min of the
    # 446.4 Bespoke 99.0% allows.
    uptime("umbrella", Product.BESPOKE, 99.664, 150, 99.0, "tier", False, 296.4),
]


async def sla_by_incident(sessionmaker: Sessionmaker, scope: TicketScope = EVERY_TICKET) -> list[SlaGroup]:
    async with sessionmaker() as session:
        return await sla_report.sla_report(
            session=session, start=MARCH[0], end=MARCH[1], group_by=ReportGroupBy.INCIDENT, scope=scope
        )


# --- SLA by incident ----------------------------------------------------------------------------


async def test_sla_by_incident_groups_each_incidents_tickets_and_the_unlinked_last(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_incident_reports(sessionmaker)

    groups = await sla_by_incident(sessionmaker)

    assert groups == EXPECTED_BY_INCIDENT
    # Every March ticket once, as in every other grouping.
    assert (sum(g.tickets for g in groups), sum(g.first_response_met for g in groups)) == (13, 7)


@pytest.mark.parametrize("who", list(SCOPES))
async def test_a_partner_and_a_customer_see_only_their_own_tickets_of_each_incident(
    sessionmaker: Sessionmaker, who: str
) -> None:
    await seed_incident_reports(sessionmaker)

    assert await sla_by_incident(sessionmaker, SCOPES[who]) == EXPECTED_BY_INCIDENT_SCOPED[who]


# --- Uptime with incidents ----------------------------------------------------------------------


async def test_an_incidents_outage_counts_for_each_linked_customer_and_overlaps_count_once(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_incident_reports(sessionmaker)

    assert await uptime_rows(sessionmaker, "2026-03") == EXPECTED_UPTIME_WITH_INCIDENTS


async def test_an_incidents_outage_is_in_the_report_of_the_linked_tickets_reach_only(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_incident_reports(sessionmaker)

    partner = await uptime_rows(sessionmaker, "2026-03", scope=SCOPES["partner"])
    acme = await uptime_rows(sessionmaker, "2026-03", scope=SCOPES["customer"])
    initech = await uptime_rows(sessionmaker, "2026-03", customer_id="initech")

    assert partner == EXPECTED_UPTIME_WITH_INCIDENTS[2:4]
    assert acme == EXPECTED_UPTIME_WITH_INCIDENTS[:2]
    assert initech == [EXPECTED_UPTIME_WITH_INCIDENTS[6]]


async def test_an_open_incident_counts_until_now_and_a_relinked_ticket_counts_its_new_incident_only(
    sessionmaker: Sessionmaker,
) -> None:
    await seed_incident_reports(sessionmaker)
    # Opened April 10 on bot, still open on NOW (April 15): F (globex bot) is linked to it.
    await record(sessionmaker, incident_state("inc-bot", Product.BOT, at(4, 10, 0)))
    await link(sessionmaker, {"F": "inc-bot", "J": "inc-bot"})

    april = {(r.customer_id, r.product): r for r in await uptime_rows(sessionmaker, "2026-04")}
    march = {(r.customer_id, r.product): r for r in await uptime_rows(sessionmaker, "2026-03")}

    assert april["globex", Product.BOT].downtime_minutes == 5 * 24 * 60
    # J moved to inc-bot: umbrella has its bot row in April, and in March only K's outage.
    assert april["umbrella", Product.BOT].downtime_minutes == 5 * 24 * 60
    assert march["umbrella", Product.BESPOKE] == UMBRELLA


# --- The incident's row -------------------------------------------------------------------------


async def test_a_resolved_incidents_row_is_final_and_its_products_are_written_once(
    sessionmaker: Sessionmaker,
) -> None:
    opened = incident_state(IDENTITY, Product.IDENTITY, mar(2, 10))
    resolved = incident_state(IDENTITY, Product.IDENTITY, mar(2, 10), mar(2, 12), outage_ended_at=mar(2, 11))
    for state in (opened, resolved, opened, resolved):  # a late retry of the opening's write
        await record(sessionmaker, state)

    async with sessionmaker() as session:
        row = await session.get_one(Incident, IDENTITY)
        products = list(await session.scalars(select(IncidentProduct.product)))
    assert (row.status, row.severity, row.title) == (IncidentStatus.RESOLVED.value, 1, "identity outage")
    assert (row.opened_at, row.resolved_at) == (mar(2, 10), mar(2, 12))
    assert (row.outage_started_at, row.outage_ended_at) == (mar(2, 10), mar(2, 11))
    assert products == ["identity"]


def test_the_outage_is_the_given_times_else_when_the_incident_opened_and_resolved() -> None:
    assert incident_state(IDENTITY, Product.IDENTITY, mar(2, 10)).outage() == (mar(2, 10), None)
    given = incident_state(
        IDENTITY,
        Product.IDENTITY,
        mar(2, 10),
        mar(2, 12),
        outage_started_at=mar(2, 9),
        outage_ended_at=mar(2, 11),
    )
    assert given.outage() == (mar(2, 9), mar(2, 11))
    assert incident_state(IDENTITY, Product.IDENTITY, mar(2, 10), mar(2, 12)).outage() == (
        mar(2, 10),
        mar(2, 12),
    )


@pytest.mark.parametrize(
    ("ended", "rule"),
    [
        (mar(2, 8), "outage_times"),  # before it began at 09:00
        (mar(2, 13), "outage_window"),  # after now, 12:00
        (mar(2, 11).replace(tzinfo=None), "outage_times"),  # no UTC offset
    ],
)
def test_a_resolutions_outage_end_is_after_its_start_and_not_in_the_future(ended: Any, rule: str) -> None:
    state = incident_state(IDENTITY, Product.IDENTITY, mar(2, 10), outage_started_at=mar(2, 9))
    request = ResolveIncident(actor=SUPPORT, resolution="fixed", outage_ended_at=ended)

    problem = request.outage_problem(state, mar(2, 12))

    assert problem is not None and (problem.field, problem.rule) == ("outage_ended_at", rule)
    fine = ResolveIncident(actor=SUPPORT, resolution="fixed", outage_ended_at=mar(2, 12))
    assert fine.outage_problem(state, mar(2, 12)) is None


# --- Migration 0017 -----------------------------------------------------------------------------


async def test_migration_0017_downgrades_and_upgrades_the_incident_tables(
    db_engine: AsyncEngine, sessionmaker: Sessionmaker
) -> None:
    await record(sessionmaker, incident_state(IDENTITY, Product.IDENTITY, mar(2, 10)))

    def back_to_0016(connection: Connection) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")
        return set(inspect(connection).get_table_names())

    async with db_engine.begin() as connection:
        tables = await connection.run_sync(back_to_0016)
    assert not {"incidents", "incident_products"} & tables
    assert "tickets" in tables
    await migrate(db_engine)

    async with sessionmaker() as session:
        assert list(await session.scalars(select(Incident.incident_id))) == []
    await record(sessionmaker, incident_state(IDENTITY, Product.IDENTITY, mar(2, 10)))
    async with sessionmaker() as session:
        assert list(await session.scalars(select(IncidentProduct.incident_id))) == [IDENTITY]


# --- Over HTTP ----------------------------------------------------------------------------------

MARCH_PARAMS = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "group_by": "incident"}


async def test_sla_by_incident_over_http_as_json_and_csv_scoped_to_the_key(db_stack: Stack) -> None:
    await seed_incident_reports(db_stack.sessionmaker)

    as_json = await get(db_stack, "/reports/sla", ADMIN, **MARCH_PARAMS)
    as_csv = await get(db_stack, "/reports/sla", ADMIN, "text/csv", **MARCH_PARAMS)
    partner = await get(db_stack, "/reports/sla", PARTNER, **MARCH_PARAMS)
    customer = await get(db_stack, "/reports/sla", CUSTOMER, **MARCH_PARAMS)
    uptime_of_acme = await get(db_stack, "/reports/uptime", CUSTOMER, month="2026-03")

    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == sla_json(EXPECTED_BY_INCIDENT)
    # The unlinked tickets' key is an empty cell, as a ticket without a partner's is.
    assert read_csv(as_csv.text) == sla_csv_rows(EXPECTED_BY_INCIDENT)
    assert [row["key"] for row in read_csv(as_csv.text)] == [BESPOKE, IDENTITY, ""]
    assert partner.json() == sla_json(EXPECTED_BY_INCIDENT_SCOPED["partner"])
    assert customer.json() == sla_json(EXPECTED_BY_INCIDENT_SCOPED["customer"])
    assert uptime_of_acme.json()["items"] == [
        row.model_dump(mode="json") for row in EXPECTED_UPTIME_WITH_INCIDENTS[:2]
    ]
    # The console's report page offers the grouping and shows the partner its own groups.
    page = await db_stack.http.get(
        "/console/reports",
        params={"from": "2026-03-01", "to": "2026-04-01", "group_by": "incident", "month": "2026-03"},
        headers=console_as(PARTNER),
    )
    assert page.status_code == 200, page.text
    assert '<option value="incident" selected>' in page.text
    table = page.text.split('data-testid="sla-table"', 1)[1].split("</table>", 1)[0]
    assert IDENTITY in table and BESPOKE not in table
