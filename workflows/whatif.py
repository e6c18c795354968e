"""What-if: a recorded ticket's life run again through the pure machine (issue 20).

Pure: no Temporal, no database, no clock. A ticket's life is a function of its pinned opening
(`TicketOpened`, its entitlement with the holidays it pinned) and the actions it was given,
each at its time. `simulate` runs that record as TicketWorkflow does: it opens the ticket,
wakes at every deadline (`next_wakeup`) and at every action, fires what is due first ("time
comes first", DESIGN.md §5), applies the action as the workflow would (a refused one changes
nothing, as a refused signal or update does), and pins more public holidays whenever the
workflow would. Under the ticket's pinned entitlement it reproduces what the workflow
recorded (tests/test_whatif.py checks it event for event on every committed history).

Under a candidate, the same record runs with another entitlement: `entitlement_under` for a
candidate policy document, or a candidate contract built by intake (`build_entitlement`)
under the ticket's pinned policy version. A candidate policy decides only inside
`policy.candidate(...)`: it is never registered, so no ticket can pin it.

workflows/whatif_report.py turns per-ticket results into groups and flips.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from workflows import machine, policy
from workflows.actions.base import ActionModel, Refusal
from workflows.actions.change_severity import ChangeSeverity
from workflows.clocks import RESPONSE_CLOCKS
from workflows.entitlement import default_response_targets, public_holidays
from workflows.enums import (
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    EventKind,
    OwningLine,
    PageAction,
    ProductType,
    Severity,
)
from workflows.models import Notification, SlaClock, TicketEvent, TicketOpened, TicketState
from workflows.policy import TicketRules
from workflows.terms import Entitlement, HolidayYears, ResponseTarget
from workflows.timeline import EventFacts, Outcome, Recorded

# A run never takes more steps than this per action: a machine that stops moving time on is a bug.
MAX_WAKEUPS = 10_000

HolidayLookup = Callable[[HolidayYears], list[date]]


def pinned_holidays(years: HolidayYears) -> list[date]:
    """What the `public_holidays` activity answers (activities/holidays.py), computed here."""
    return public_holidays(years.country, range(years.first_year, years.stop_year), years.subdivision)


@dataclass(frozen=True)
class RecordedAction:
    """One action as the ticket was given it: the update's (or signal's) body at its time."""

    at: datetime
    action: ActionModel
    signal: bool = False


@dataclass(frozen=True)
class RecordedTicket:
    """Everything a ticket's life depends on. `until`: how far its record reaches (the end of its
    history, or now); deadlines up to then have fired."""

    opened: TicketOpened
    actions: tuple[RecordedAction, ...]
    until: datetime
    # When the workflow woke, where known (a history's workflow tasks, in order). A deadline
    # fires at its due time whenever the workflow wakes, but an automatic close is dated when
    # it runs: the run under the pinned terms wakes when the workflow did, to date it the same.
    ticks: tuple[datetime, ...] = ()


@dataclass
class Run:
    """A ticket run to `until`: its final state, every event and every notice, in order.

    Run without texts (`simulate(..., texts=False)`, as `run_both` runs it), it has neither
    events nor notices but `facts`, its events as plain data with the deadlines' sentences left
    empty, and `paged`, the seq of each event that triggered a page: all `result_of` reads.
    While it runs, its state's clocks leave out the customer-update clocks that are over
    (`_set_apart`); the finished run's state has them all again, in order."""

    state: TicketState
    events: list[TicketEvent]
    notifications: list[Notification]
    refused: list[tuple[RecordedAction, str]] = field(default_factory=list)
    ticks: tuple[datetime, ...] = ()
    texts: bool = True
    facts: list[EventFacts] = field(default_factory=list)
    paged: list[int] = field(default_factory=list)
    # Without texts: every clock the run made, in order, and how many of the state's clocks
    # (the first ones) are in it.
    made: list[SlaClock] = field(default_factory=list)
    placed: int = 0

    def take(self, outcome: Outcome) -> None:
        """A step's notices (or, without texts, its events and pages) onto the run."""
        if self.texts:
            self.notifications += outcome.notifications
        else:
            self.facts += outcome.facts
            self.paged += outcome.paged


def simulate(
    ticket: RecordedTicket,
    entitlement: Entitlement | None = None,
    *,
    holidays: HolidayLookup = pinned_holidays,
    texts: bool = True,
) -> Run:
    """Run the record through the machine, under its pinned entitlement or `entitlement`;
    without `texts`, to what it comes to only (see `Run`)."""
    opened = ticket.opened
    if opened.carried_state is not None:
        raise ValueError("simulate a ticket from its first run's opening, not a continued run")
    if entitlement is not None:
        opened = opened.model_copy(update={"entitlement": entitlement})
    outcome = machine.open_ticket(opened, texts=texts)
    run = Run(outcome.state, [], [], texts=texts)
    run.take(outcome)
    # Under other terms the workflow would have woken at other times: then at the deadlines.
    run.ticks = ticket.ticks if entitlement is None else ()
    _pin(run, opened.received_at, holidays)
    for recorded in ticket.actions:
        _wake_until(run, recorded.at, holidays)
        try:
            machine.validate(run.state, recorded.action, recorded.at)
        except Refusal as refusal:
            # As the workflow's validator (or a refused signal) leaves the ticket alone.
            run.refused.append((recorded, refusal.message))
        else:
            run.take(machine.apply(run.state, recorded.action, recorded.at, in_place=True, texts=texts))
        _pin(run, recorded.at, holidays)
    _wake_until(run, ticket.until, holidays)
    _collect(run)
    if not texts:
        _gather(run)
    return run


def _wake_until(run: Run, until: datetime, holidays: HolidayLookup) -> None:
    """Wake as the workflow's timer does, at every deadline up to `until`."""
    for _ in range(MAX_WAKEUPS):
        wakeup = machine.next_wakeup_at(run.state)
        if wakeup is None or wakeup > until:
            return
        # The workflow's timer is whole milliseconds, rounded up; it runs the deadline at the
        # first workflow task from then on.
        at = _ceil_ms(wakeup)
        if run.ticks:
            woke = bisect_left(run.ticks, at)
            if woke == len(run.ticks):
                return  # the workflow had not woken for it by the end of its record
            at = run.ticks[woke]
        if at > until:
            return
        run.take(machine.advance(run.state, at, in_place=True, texts=run.texts))
        _pin(run, at, holidays)
        _collect(run)
    raise RuntimeError(f"ticket {run.state.ticket_id}: time stopped moving on by {until.isoformat()}")


def _ceil_ms(at: datetime) -> datetime:
    extra = at.microsecond % 1000
    return at if extra == 0 else at + timedelta(microseconds=1000 - extra)


def _pin(run: Run, now: datetime, holidays: HolidayLookup) -> None:
    needed = machine.holidays_needed(run.state, now)
    while needed is not None:
        machine.pin_holidays(run.state, needed, holidays(needed), now)
        needed = machine.holidays_needed(run.state, now)


def _collect(run: Run) -> None:
    """Move the state's new events onto the run's list (the workflow records and drops them)."""
    events = run.state.events
    if events:
        run.events.extend(events)
        events.clear()  # the run's own state: no copy shares this list
    if not run.texts and len(run.state.clocks) > run.placed:
        _set_apart(run)


# A customer-update clock in none of these is over for good: only a paused clock runs again,
# and only a resolution clock is reopened (clocks.unpause).
_UNDECIDED = (ClockStatus.RUNNING, ClockStatus.WARNED, ClockStatus.PAUSED)


def _set_apart(run: Run) -> None:
    """Take the customer-update clocks that are over out of the state's list (a Premium Sev 1
    gathers one an hour while it is open, each started as the last one breaches: the list
    grows), so the machine's scans at every wakeup go over the others only. Nothing reads such
    a clock but `result_of`: the machine looks at live, paused or response and resolution
    clocks. (The clocks are only ever appended to the list.)"""
    clocks = run.state.clocks
    run.made += clocks[run.placed :]
    kept = [c for c in clocks if c.kind != ClockKind.PERIODIC_UPDATE or c.status in _UNDECIDED]
    if len(kept) < len(clocks):
        clocks[:] = kept
    run.placed = len(kept)


def _gather(run: Run) -> None:
    """Every clock back in the state's list, in the order they were made."""
    clocks = run.state.clocks
    run.made += clocks[run.placed :]
    clocks[:] = run.made
    run.placed = len(clocks)


# --- A candidate policy document, applied to a pinned entitlement -------------------------------


def _by_key(targets: dict[Severity, ResponseTarget]) -> dict[str, ResponseTarget]:
    return {str(int(sev)): target for sev, target in targets.items()}


def _retarget(
    pinned: dict[str, ResponseTarget], was: dict[str, ResponseTarget], now: dict[str, ResponseTarget]
) -> dict[str, ResponseTarget]:
    """The candidate's default where the ticket had the old default; a contract's own target
    (one that differs from the old default) stays."""
    keys = sorted(set(pinned) | set(now))
    return {
        key: now[key] if key in now and pinned.get(key) == was.get(key) else pinned[key]
        for key in keys
        if key in now or key in pinned
    }


# The defaults of one contract shape under one document, computed once per simulation: every
# ticket of a tier asks for the same. Keyed by the document's identity, which the entry keeps.
_DEFAULTS: dict[tuple[Any, ...], tuple[TicketRules, dict[str, dict[str, ResponseTarget]]]] = {}


def _defaults(ent: Entitlement, rules: TicketRules) -> dict[str, dict[str, ResponseTarget]]:
    key = (
        id(rules),
        ent.tier,
        ent.product_type,
        ent.coverage_24x7,
        ent.partner_tier,
        ent.partner_coverage_24x7,
    )
    cached = _DEFAULTS.get(key)
    if cached is not None and cached[0] is rules:
        return cached[1]
    response = default_response_targets(
        ent.tier, ent.product_type, coverage_24x7=ent.coverage_24x7, rules=rules
    )
    handoff: dict[Severity, ResponseTarget] = {}
    if ent.product_type == ProductType.PARTNER_DELIVERED and ent.partner_tier is not None:
        handoff = default_response_targets(
            ent.partner_tier, ProductType.PLATFORM, coverage_24x7=ent.partner_coverage_24x7, rules=rules
        )
    periodic = {sev: rules.target(t) for sev, t in rules.periodic_updates.get(ent.tier, {}).items()}
    found = {"response": _by_key(response), "handoff": _by_key(handoff), "periodic": _by_key(periodic)}
    if len(_DEFAULTS) > 256:
        _DEFAULTS.clear()
    _DEFAULTS[key] = (rules, found)
    return found


def entitlement_under(ent: Entitlement, candidate: TicketRules, key: str) -> Entitlement:
    """`ent` as intake would have built it under `candidate` (known by `key`, the version key
    `policy.candidate` gave it): every value the ticket took from its pinned policy's defaults
    becomes the candidate's; what its contract set stays, and so do its holidays.

    A contract's target equal to the old policy default cannot be told from the default, and
    follows the candidate: the read model keeps the entitlement, not the contract's overrides.
    """
    pinned = policy.rules_for(ent.policy_version, ent.policy_fingerprint)
    was, now = _defaults(ent, pinned), _defaults(ent, candidate)
    tier = ent.connectsoft_tier
    return ent.model_copy(
        update={
            "policy_version": key,
            # The key names the candidate's fingerprint (policy.candidate): not hashed again per ticket.
            "policy_fingerprint": key.removeprefix(policy.CANDIDATE_PREFIX),
            "response_targets": _retarget(ent.response_targets, was["response"], now["response"]),
            "handoff_targets": _retarget(ent.handoff_targets, was["handoff"], now["handoff"]),
            "periodic_update": _retarget(ent.periodic_update, was["periodic"], now["periodic"]),
            "warn_ratio": candidate.warn_ratio if ent.warn_ratio == pinned.warn_ratio else ent.warn_ratio,
            "max_level": candidate.max_level[tier]
            if ent.max_level == pinned.max_level[tier]
            else ent.max_level,
            "channels": list(candidate.channels[tier])
            if ent.channels == list(pinned.channels[tier])
            else ent.channels,
        }
    )


# --- What a run comes to -------------------------------------------------------------------


@dataclass(frozen=True)
class ClockOutcome:
    """One clock of a run, named by its kind and its occurrence among clocks of that kind
    (`first_response`, `escalation_ack#2`), so two runs of one ticket line up clock by clock."""

    name: str
    kind: str
    line: OwningLine
    binding: bool
    status: ClockStatus
    due_at: datetime


@dataclass(frozen=True)
class TicketResult:
    ticket_id: str
    customer_id: str
    tier: str
    severity: int
    received_at: datetime
    clocks: tuple[ClockOutcome, ...]
    breaches: dict[str, int]
    escalations: dict[str, int]
    pages: int
    pages_after_hours: int
    mtta_minutes: float | None
    refused: int

    @property
    def first_response(self) -> ClockStatus | None:
        first = next((c for c in self.clocks if c.name == "first_response"), None)
        return first.status if first is not None and first.binding else None


def result_of(run: Run, opened: TicketOpened) -> TicketResult:
    state = run.state
    seen: dict[str, int] = {}
    outcomes = []
    for clock in state.clocks:
        seen[clock.kind.value] = seen.get(clock.kind.value, 0) + 1
        n = seen[clock.kind.value]
        name = clock.kind.value if n == 1 else f"{clock.kind.value}#{n}"
        outcomes.append(
            ClockOutcome(
                name, clock.kind.value, clock.owner, clock.target.binding, clock.status, clock.due_at
            )
        )
    breaches: dict[str, int] = {}
    escalations: dict[str, int] = {}
    events: Sequence[Recorded] = run.events if run.texts else run.facts
    for event in events:
        if event.kind == EventKind.SLA_BREACHED:
            line = event.detail.get("line", OwningLine.CONNECTSOFT.value)
            breaches[line] = breaches.get(line, 0) + 1
        elif _is_escalation(event) and event.level is not None and event.level > 1:
            escalations[str(event.level)] = escalations.get(str(event.level), 0) + 1
    pages, after_hours = _pages(run, events, state.entitlement)
    ack = state.acknowledged_at
    return TicketResult(
        ticket_id=state.ticket_id,
        customer_id=state.customer_id,
        tier=opened.entitlement.tier.value,
        severity=int(opened.severity),
        received_at=opened.received_at,
        clocks=tuple(outcomes),
        breaches=breaches,
        escalations=escalations,
        pages=pages,
        pages_after_hours=after_hours,
        mtta_minutes=(ack - opened.received_at).total_seconds() / 60 if ack else None,
        refused=len(run.refused),
    )


def _is_escalation(event: Recorded) -> bool:
    # As the read model counts them (store/clock_outcomes.py): the partner's critical-incident
    # notice routes nothing.
    if event.kind == EventKind.ESCALATED:
        return True
    return event.kind == EventKind.CRITICAL_INCIDENT and event.detail.get("line") != OwningLine.PARTNER.value


def _pages(run: Run, events: Sequence[Recorded], ent: Entitlement) -> tuple[int, int]:
    """Pages triggered, and how many fell outside the customer's business hours."""
    if run.texts:
        paged = [
            int(notice.key.split("-", 1)[0])
            for notice in run.notifications
            if notice.page and notice.page_action == PageAction.TRIGGER
        ]
    else:
        paged = run.paged
    if not paged:
        return 0, 0
    at_by_seq = {event.seq: event.at for event in events}
    hours = policy.rules_for(ent.policy_version, ent.policy_fingerprint).calendar_hours
    business = hours[CoverageCalendar.BUSINESS]
    zone = ZoneInfo(ent.timezone)
    holidays = set(ent.holidays)
    after = 0
    for seq in paged:
        at = at_by_seq.get(seq)
        if at is not None and not _in_hours(at, zone, holidays, business.opens, business.closes):
            after += 1
    return len(paged), after


def _in_hours(at: datetime, zone: ZoneInfo, holidays: set[date], opens: time, closes: time) -> bool:
    local = at.astimezone(zone)
    if local.weekday() >= 5 or local.date() in holidays:
        return False
    return opens <= local.time() < closes


def response_clocks(result: TicketResult, line: OwningLine | None = None) -> Sequence[ClockOutcome]:
    kinds = {kind.value for kind in RESPONSE_CLOCKS}
    return [c for c in result.clocks if c.kind in kinds and (line is None or c.line == line)]


def run_both(
    ticket: RecordedTicket,
    after: Entitlement,
    *,
    holidays: HolidayLookup = pinned_holidays,
) -> tuple[TicketResult, TicketResult]:
    """The ticket under its pinned entitlement, then under `after` (inside its candidate's
    `policy.candidate` context, when it names a candidate policy).

    When `after` cannot run differently (`same_run`, at the severities the record reaches), the
    second run is the first: most tickets of a candidate that changes one tier's target at one
    severity are not of that tier, or not of that severity."""
    before = result_of(simulate(ticket, holidays=holidays, texts=False), ticket.opened)
    if not ticket.ticks and same_run(ticket.opened.entitlement, after, severities(ticket)):
        return before, before
    return before, result_of(simulate(ticket, after, holidays=holidays, texts=False), ticket.opened)


def severities(ticket: RecordedTicket) -> frozenset[Severity]:
    """Every severity the ticket can have while its record runs: the one it was filed with and
    each that a `change-severity` names (the only action that changes it)."""
    changes = (r.action.severity for r in ticket.actions if isinstance(r.action, ChangeSeverity))
    return frozenset({ticket.opened.severity, *changes})


_VERSION_FIELDS = frozenset({"policy_version", "policy_fingerprint"})
# Every other field of an entitlement; `entitlement_under` shares the ones it leaves alone.
_COMPARED = tuple(name for name in Entitlement.model_fields if name not in _VERSION_FIELDS)
# The targets by severity ("1".."4"): the machine reads one entry at a time, the one of the
# ticket's severity, and asks whether a table is empty (ladder.response_target), never more
# of it (tests/test_whatif.py checks).
TARGET_TABLES = frozenset({"response_targets", "handoff_targets", "resolution_targets", "periodic_update"})


def same_run(pinned: Entitlement, after: Entitlement, severities: Collection[Severity] | None = None) -> bool:
    """Whether a record runs alike under both: equal entitlements but for the policy version,
    under versions equal in every rule the machine reads (all but `policy.INTAKE_ONLY_FIELDS`).
    With `severities` (those the record can reach), the target tables need only agree on those:
    a candidate that changes Sev 1 leaves a Sev 3 ticket that stays Sev 3 alone.
    (A record with `ticks` does not: its run under the pinned terms wakes when the workflow did.)"""
    if after is pinned:
        return True
    keys = None if severities is None else [str(int(sev)) for sev in severities]
    for name in _COMPARED:
        one, other = getattr(pinned, name), getattr(after, name)
        if one is other:
            continue
        if keys is not None and name in TARGET_TABLES:
            if bool(one) != bool(other) or any(one.get(key) != other.get(key) for key in keys):
                return False
        elif one != other:
            return False
    return _same_rules(
        policy.rules_for(pinned.policy_version, pinned.policy_fingerprint),
        policy.rules_for(after.policy_version, after.policy_fingerprint),
    )


# Per pair of documents (by identity, which the entry keeps), computed once per simulation.
_SAME_RULES: dict[tuple[int, int], tuple[TicketRules, TicketRules, bool]] = {}


def _same_rules(one: TicketRules, other: TicketRules) -> bool:
    if one is other:
        return True
    cached = _SAME_RULES.get((id(one), id(other)))
    if cached is not None and cached[0] is one and cached[1] is other:
        return cached[2]
    exclude = set(policy.INTAKE_ONLY_FIELDS)
    same = one.model_dump(exclude=exclude) == other.model_dump(exclude=exclude)
    if len(_SAME_RULES) > 256:
        _SAME_RULES.clear()
    _SAME_RULES[(id(one), id(other))] = (one, other, same)
    return same
