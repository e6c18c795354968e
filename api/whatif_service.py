"""What-if over a window of recorded tickets (issue 20): `escalator whatif` (worker/whatif_cli.py) and
`POST /policy/simulate` both run here.

The tickets received in the window are found in the read model (`tickets.received_at`). Each
one's record (its pinned opening and its actions with their times) comes from the read model
too (store/whatif_inputs.py: `record_ticket` writes them beside the events), or, when asked
(`from_histories`), from its Temporal history, every run of it (runtime/whatif_histories.py).
A ticket filed before its workflow wrote that record is replayed from its history or, from the
read model, counted as `unrecorded` and left out. Nothing here writes: the read model is only
queried, and Temporal is only asked for histories, so a simulation changes no ticket, sends
no notice and starts no workflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowHistory

from runtime.whatif_histories import decode_history, recorded_ticket
from store.db import Ticket
from store.sla_report import ChartSeries, draw_weekly_chart
from store.tickets import get_timeline
from store.whatif_inputs import recorded_tickets as read_model_records
from workflows import policy
from workflows.entitlement import build_entitlement
from workflows.policy import TicketRules
from workflows.terms import ContractTerms, Entitlement
from workflows.whatif import RecordedTicket, TicketResult, entitlement_under, run_both, simulate
from workflows.whatif_report import GroupBy, report, weekly_attainment


@dataclass(frozen=True)
class Candidate:
    """A policy document for every ticket, or one customer's contract for its tickets."""

    rules: TicketRules | None = None
    contract: ContractTerms | None = None

    def entitlement_for(self, ticket: RecordedTicket, key: str | None) -> Entitlement:
        opened = ticket.opened
        pinned = opened.entitlement
        if self.rules is not None:
            assert key is not None
            return entitlement_under(pinned, self.rules, key)
        assert self.contract is not None
        # Intake, under the policy version the ticket pinned, with the candidate contract.
        rules = policy.rules_for(pinned.policy_version, pinned.policy_fingerprint)
        return build_entitlement(self.contract, received_at=opened.received_at, rules=rules)


async def ticket_ids(
    sessionmaker: async_sessionmaker[AsyncSession], start: datetime, end: datetime, customer_id: str | None
) -> list[tuple[str, str]]:
    """The ticket and workflow ids of the tickets received in [start, end), oldest first."""
    stmt = select(Ticket.ticket_id, Ticket.workflow_id).where(
        Ticket.received_at >= start, Ticket.received_at < end
    )
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    async with sessionmaker() as session:
        found = await session.execute(stmt.order_by(Ticket.received_at, Ticket.ticket_id))
        return [(ticket_id, workflow_id) for ticket_id, workflow_id in found.all()]


async def histories_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a ticket's workflow, first to last (following continue-as-new back)."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, await decode_history(history, client.data_converter.payload_codec))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return runs


@dataclass(frozen=True)
class Records:
    """The window's tickets as recorded, and the ids of those the source has no record of."""

    tickets: list[RecordedTicket]
    unrecorded: list[str]


async def recorded_tickets(
    client: Client | None,
    sessionmaker: async_sessionmaker[AsyncSession],
    start: datetime,
    end: datetime,
    customer_id: str | None = None,
    *,
    from_histories: bool = False,
) -> Records:
    """From the read model, or (`from_histories`, with a `client`) from Temporal histories."""
    ids = await ticket_ids(sessionmaker, start, end, customer_id)
    if from_histories:
        assert client is not None
        return Records(
            [recorded_ticket(await histories_of(client, workflow_id)) for _, workflow_id in ids], []
        )
    async with sessionmaker() as session:
        tickets, missing = await read_model_records(session=session, ticket_ids=[t for t, _ in ids])
    return Records(tickets, missing)


def compare(
    tickets: Iterable[RecordedTicket],
    candidate: Candidate,
    group_by: GroupBy | None = None,
    *,
    weeks: bool = False,
) -> dict[str, Any]:
    """The answer of POST /policy/simulate; with `weeks`, also the first-response attainment
    per week before and after (`weeks`, the console's chart)."""
    pairs: list[tuple[TicketResult, TicketResult]] = []
    if candidate.rules is not None:
        with policy.candidate(candidate.rules) as key:
            pairs = [run_both(t, candidate.entitlement_for(t, key)) for t in tickets]
    else:
        assert candidate.contract is not None
        mine = [t for t in tickets if t.opened.customer_id == candidate.contract.customer_id]
        pairs = [run_both(t, candidate.entitlement_for(t, None)) for t in mine]
    answer = report(pairs, group_by)
    if weeks:
        answer["weeks"] = weekly_attainment(pairs)
    return answer


async def simulate_window(
    *,
    client: Client | None,
    sessionmaker: async_sessionmaker[AsyncSession],
    rules: TicketRules | None = None,
    contract: ContractTerms | None = None,
    start: datetime,
    end: datetime,
    customer_id: str | None = None,
    group_by: GroupBy | None = None,
    weeks: bool = False,
    from_histories: bool = False,
) -> dict[str, Any]:
    """A validated candidate policy (`rules`), or one customer's candidate `contract`, over the
    tickets received in [start, end): the answer of POST /policy/simulate, and of the console's
    What if page (which asks for `weeks` too). Tickets of the window that the read model has no
    record of are counted in `unrecorded` (present only then)."""
    if contract is not None:
        customer_id = contract.customer_id
    records = await recorded_tickets(
        client, sessionmaker, start, end, customer_id, from_histories=from_histories
    )
    answer: dict[str, Any] = await run_in_threadpool(
        compare, records.tickets, Candidate(rules=rules, contract=contract), group_by, weeks=weeks
    )
    if records.unrecorded:
        answer["unrecorded"] = len(records.unrecorded)
    return answer


def weekly_chart(weeks: list[dict[str, Any]], *, start: datetime, end: datetime, title: str) -> bytes:
    """The `weeks` of an answer as the reports' weekly chart (an SVG): first-response
    attainment before (id `before`) and after (id `after`) the candidate, for every week that
    [start, end) touches, as the SLA chart has them; a week without an ended first response
    is a gap."""
    by_week = {w["week"]: w for w in weeks}
    monday = start.date() - timedelta(days=start.weekday())
    labels: list[str] = []
    before: list[float | None] = []
    after: list[float | None] = []
    while datetime.combine(monday, time.min, UTC) < end:
        year, week, _ = monday.isocalendar()
        shown = by_week.get(f"{year}-W{week:02d}", {})
        labels.append(f"{monday:%d %b}")
        before.append(shown.get("before"))
        after.append(shown.get("after"))
        monday += timedelta(days=7)
    lines = [
        ChartSeries("Before (pinned terms) %", "tab:blue", "before", before),
        ChartSeries("After (candidate) %", "tab:orange", "after", after, marker="x", linestyle="--"),
    ]
    return draw_weekly_chart(labels, lines=lines, title=title)


async def verify(
    tickets: Iterable[RecordedTicket], sessionmaker: async_sessionmaker[AsyncSession]
) -> list[str]:
    """Each ticket under its pinned terms against what the read model recorded: the tickets
    whose timeline differs, with the first difference. Empty: the simulation is exact."""
    differences = []
    for ticket in tickets:
        run = simulate(ticket)
        async with sessionmaker() as session:
            timeline = await get_timeline(session=session, ticket_id=ticket.opened.ticket_id)
        made = [event.model_dump() for event in run.events]
        recorded = [event.model_dump() for event in timeline]
        if made != recorded:
            first = next(
                (
                    f"event {m['seq']}: {m['kind']} at {m['at']} vs {r['kind']} at {r['at']}"
                    for m, r in zip(made, recorded, strict=False)
                    if m != r
                ),
                f"{len(made)} events simulated, {len(recorded)} recorded",
            )
            differences.append(f"{ticket.opened.ticket_id}: {first}")
    return differences
