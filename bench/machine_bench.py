"""The pure machine: open_ticket + advance + apply(Acknowledge) per ticket.

Baseline: one TicketState.model_copy(deep=True) of the freshly opened state: the copy every
machine step made before it changed anything, until the machine learnt to validate first and
then change only a working copy of the clocks and lists (or, in the workflow, its own state).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bench.common import Result, interleaved
from tests.factories import DEMO_TERMS, opened_ticket
from workflows.actions.acknowledge import Acknowledge
from workflows.enums import Role, Severity
from workflows.machine import advance, apply, open_ticket
from workflows.models import Principal, TicketOpened, TicketState


def make_tickets(count: int, seed: int = 2026) -> list[tuple[TicketOpened, datetime]]:
    """Tickets across the demo contracts and all severities, each with an instant to advance to."""
    rng = random.Random(seed)
    first = datetime(2026, 11, 2, tzinfo=UTC)
    customers = sorted(DEMO_TERMS)
    # Intake pins holidays for the intake year and the next; build each entitlement once and
    # reuse it (every ticket here is received within 2026-2027).
    base = {c: opened_ticket(c, 3, first) for c in customers}
    tickets = []
    for _ in range(count):
        customer = rng.choice(customers)
        received = first + timedelta(minutes=rng.randrange(60 * 24 * 60))
        opened = base[customer].model_copy(
            update={
                "ticket_id": f"{rng.getrandbits(48):012x}",
                "severity": Severity(rng.randint(1, 4)),
                "received_at": received,
            }
        )
        tickets.append((opened, received + timedelta(minutes=rng.randint(1, 90))))
    return tickets


def run(tickets: int = 2_000, rounds: int = 5) -> Result:
    cases = make_tickets(tickets)
    # An admin acknowledges any line's clocks, so every demo contract's ticket accepts it.
    ack = Acknowledge(actor=Principal(role=Role.ADMIN, name="bench-agent"))
    opened_states: list[TicketState] = [open_ticket(opened).state for opened, _ in cases]

    def subject() -> int:
        for opened, now in cases:
            state = open_ticket(opened).state
            state = advance(state, now).state
            apply(state, ack, now)
        return len(cases)

    def baseline() -> int:
        for state in opened_states:
            state.model_copy(deep=True)
        return len(opened_states)

    subject_s, baseline_s = interleaved(subject, baseline, rounds)
    return Result(
        name="machine",
        metric="open + advance + acknowledge per ticket",
        unit="µs/ticket",
        subject=subject_s * 1e6,
        baseline=baseline_s * 1e6,
        notes=[
            f"{tickets:,} tickets x best of {rounds} rounds, all demo contracts and Sev 1-4, "
            "advanced 1-90 min after intake. Baseline: one deep copy of an opened TicketState "
            "(what each step used to cost before it changed anything).",
        ],
    )
