"""What-if results in groups, before and after, and the clocks that flip (DESIGN.md §8).

Pure: per-ticket results of workflows/whatif.py in, the `POST /policy/simulate` answer out:
`{"tickets": n, "groups": [{"key", "before", "after"}], "flips": [{"ticket_id", "clock",
"before", "after"}]}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median
from typing import Any

from workflows.enums import ClockStatus, OwningLine
from workflows.whatif import TicketResult, response_clocks

ENDED = (ClockStatus.MET, ClockStatus.BREACHED)


class GroupBy(StrEnum):
    TIER = "tier"
    SEVERITY = "severity"
    CUSTOMER = "customer"
    LINE = "line"


@dataclass
class GroupStats:
    """One side (before or after) of one group."""

    tickets: int = 0
    first_response_met: int = 0
    first_response_breached: int = 0
    breaches: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    pages_after_hours: int = 0
    acks: list[float] = field(default_factory=list)

    def add(self, result: TicketResult, line: OwningLine | None) -> None:
        self.tickets += 1
        if line is None:
            first = result.first_response
            self.first_response_met += first == ClockStatus.MET
            self.first_response_breached += first == ClockStatus.BREACHED
        else:
            # By line: each binding response clock the line owned, ended met or breached.
            for clock in response_clocks(result, line):
                if clock.binding:
                    self.first_response_met += clock.status == ClockStatus.MET
                    self.first_response_breached += clock.status == ClockStatus.BREACHED
        for name, n in result.breaches.items():
            if line is None or name == line.value:
                self.breaches[name] = self.breaches.get(name, 0) + n
        for level, n in result.escalations.items():
            self.escalations[level] = self.escalations.get(level, 0) + n
        self.pages += result.pages
        self.pages_after_hours += result.pages_after_hours
        if result.mtta_minutes is not None:
            self.acks.append(result.mtta_minutes)

    def answer(self) -> dict[str, Any]:
        ended = self.first_response_met + self.first_response_breached
        acks = self.acks
        return {
            "tickets": self.tickets,
            "first_response_met": self.first_response_met,
            "first_response_breached": self.first_response_breached,
            "attainment_pct": round(100 * self.first_response_met / ended, 2) if ended else None,
            "breaches": dict(sorted(self.breaches.items())),
            "escalations": {level: self.escalations.get(level, 0) for level in ("2", "3", "4")},
            "pages": self.pages,
            "pages_after_hours": self.pages_after_hours,
            "mtta_mean_minutes": round(sum(acks) / len(acks), 2) if acks else None,
            "mtta_p50_minutes": round(median(acks), 2) if acks else None,
        }


def _keys(result: TicketResult, group_by: GroupBy | None) -> list[tuple[str, OwningLine | None]]:
    if group_by is None:
        return [("all", None)]
    if group_by == GroupBy.TIER:
        return [(result.tier, None)]
    if group_by == GroupBy.SEVERITY:
        return [(str(result.severity), None)]
    if group_by == GroupBy.CUSTOMER:
        return [(result.customer_id, None)]
    lines = {clock.line for clock in result.clocks}
    return [(line.value, line) for line in OwningLine if line in lines]


@dataclass(frozen=True)
class Flip:
    ticket_id: str
    clock: str
    before: str
    after: str

    def answer(self) -> dict[str, str]:
        return {"ticket_id": self.ticket_id, "clock": self.clock, "before": self.before, "after": self.after}


def flips_of(before: TicketResult, after: TicketResult) -> list[Flip]:
    """The binding clocks whose outcome differs: met <-> breached, or a clock one run has and
    the other has not (an escalation's acknowledgement clock that only a breach started)."""
    was = {c.name: c for c in before.clocks if c.binding}
    now = {c.name: c for c in after.clocks if c.binding}
    flips = []
    for name in sorted(set(was) | set(now)):
        old = was[name].status.value if name in was else "none"
        new = now[name].status.value if name in now else "none"
        if old != new and (old in ENDED or new in ENDED):
            flips.append(Flip(before.ticket_id, name, old, new))
    return flips


def weekly_attainment(pairs: Iterable[tuple[TicketResult, TicketResult]]) -> list[dict[str, Any]]:
    """First-response attainment per ISO week of receipt, before and after (the console's chart)."""
    weeks: dict[str, tuple[GroupStats, GroupStats]] = {}
    for before, after in pairs:
        year, week, _ = before.received_at.isocalendar()
        sides = weeks.setdefault(f"{year}-W{week:02d}", (GroupStats(), GroupStats()))
        sides[0].add(before, None)
        sides[1].add(after, None)
    return [
        {"week": week, "before": b.answer()["attainment_pct"], "after": a.answer()["attainment_pct"]}
        for week, (b, a) in sorted(weeks.items())
    ]


def report(
    pairs: Iterable[tuple[TicketResult, TicketResult]], group_by: GroupBy | None = None
) -> dict[str, Any]:
    """The simulation's answer: per group, before and after, and every flip."""
    groups: dict[str, tuple[GroupStats, GroupStats]] = {}
    flips: list[Flip] = []
    tickets = 0
    for before, after in pairs:
        tickets += 1
        for key, line in _keys(before, group_by):
            sides = groups.setdefault(key, (GroupStats(), GroupStats()))
            sides[0].add(before, line)
            sides[1].add(after, line)
        flips += flips_of(before, after)
    return {
        "tickets": tickets,
        "groups": [
            {"key": key, "before": b.answer(), "after": a.answer()} for key, (b, a) in sorted(groups.items())
        ],
        "flips": [flip.answer() for flip in flips],
    }
