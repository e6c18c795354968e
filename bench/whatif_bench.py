"""What-if (issue 20): tickets replayed under their pinned terms and under a candidate policy.

Subject: per ticket, the whole what-if: its run under its pinned terms, its entitlement under
the candidate (Standard Sev 1 in 2 h), its run under the candidate, the outcomes, then the
groups and flips over all tickets (workflows/whatif.py, whatif_report.py). Baseline: the
machine alone, one run of the same record under its pinned terms (open, the deadlines as they
fall, acknowledge, resolve, auto-close). Goal: 100,000 tickets in under a minute on one core.
"""

from __future__ import annotations

import random
from datetime import timedelta

from bench.common import Result, interleaved
from bench.machine_bench import make_tickets
from workflows import policy
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.resolve import Resolve
from workflows.enums import Role
from workflows.models import Principal
from workflows.policy import TicketRules
from workflows.whatif import RecordedAction, RecordedTicket, entitlement_under, run_both, simulate
from workflows.whatif_report import GroupBy, flips_of, report


def recorded(count: int, seed: int = 2026) -> list[RecordedTicket]:
    """Tickets across the demo contracts and Sev 1-4, acknowledged 1-300 min after intake (some
    late enough to breach), resolved 1-48 h later, recorded until 8 days after that (auto-close)."""
    rng = random.Random(seed)
    agent = Principal(role=Role.ADMIN, name="bench-agent")
    tickets = []
    for opened, _ in make_tickets(count, seed):
        acked_at = opened.received_at + timedelta(minutes=rng.randint(1, 300))
        resolved_at = acked_at + timedelta(minutes=rng.randint(60, 48 * 60))
        actions = (
            RecordedAction(acked_at, Acknowledge(actor=agent)),
            RecordedAction(resolved_at, Resolve(actor=agent, resolution="fixed")),
        )
        tickets.append(RecordedTicket(opened, actions, resolved_at + timedelta(days=8)))
    return tickets


def candidate() -> TicketRules:
    document = policy.current().document()
    document["version"] = "bench-standard-sev1-2h"
    document["response_targets"]["standard"]["1"]["minutes"] = 120
    return TicketRules.model_validate(document)


def run(tickets: int = 100_000, rounds: int = 1) -> Result:
    cases = recorded(tickets)
    rules = candidate()
    flipped = 0

    def subject() -> int:
        nonlocal flipped
        with policy.candidate(rules) as key:
            pairs = []
            for ticket in cases:
                after = entitlement_under(ticket.opened.entitlement, rules, key)
                pairs.append(run_both(ticket, after))
        report(pairs, GroupBy.SEVERITY)
        flipped = sum(bool(flips_of(b, a)) for b, a in pairs)
        return len(cases)

    def baseline() -> int:
        for ticket in cases:
            simulate(ticket)
        return len(cases)

    subject_s, baseline_s = interleaved(subject, baseline, rounds)
    total = subject_s * tickets
    return Result(
        name="whatif",
        metric="pinned + candidate run, outcomes, groups and flips per ticket",
        unit="µs/ticket",
        subject=subject_s * 1e6,
        baseline=baseline_s * 1e6,
        goal="100,000 tickets in < 60 s on one core",
        notes=[
            f"{tickets:,} tickets x best of {rounds} round(s), all demo contracts and Sev 1-4, "
            "acknowledged 1-300 min after intake, resolved 1-48 h later, auto-closed; candidate: "
            f"Standard Sev 1 in 2 h ({flipped:,} tickets flip). Baseline: the machine alone, one "
            f"run under the pinned terms. {tickets:,} tickets took {total:.1f} s.",
        ],
    )
