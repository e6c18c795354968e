"""What the console shows of a ticket: its clocks as people read them, with a word and an icon
for every colour, and the action forms a principal is offered.

Pure: no I/O. The templates render these; the permission table and the action definitions
decide what is offered (the permission table of the ticket's policy version, workflows/actions/).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from workflows.actions.base import ACTIONS, ActionDefinition, Choice, FormField, Widget
from workflows.clocks import CLOCK_NAMES
from workflows.enums import ClockStatus, OwningLine, Severity, TicketStatus
from workflows.models import Principal, SlaClock, TicketRow, TicketState
from workflows.permissions import Capability, Grant, grant
from workflows.policy import current

# Derived from the enums' labels (workflows/enums.py), for the templates.
LINE_NAMES: Final = {line: line.label for line in OwningLine}
SEVERITY_NAMES: Final = {severity: severity.label for severity in Severity}
STATUS_NAMES: Final = {
    TicketStatus.OPEN: "Open",
    TicketStatus.ACKNOWLEDGED: "Acknowledged",
    TicketStatus.WAITING_ON_CUSTOMER: "Waiting on customer",
    TicketStatus.RESOLVED: "Resolved",
    TicketStatus.CLOSED: "Closed",
}


class Signal(StrEnum):
    """How a clock stands, shown as a colour, an icon and a word together (never colour alone)."""

    ON_TRACK = "ok"
    WARNING = "warn"
    BREACHED = "breach"
    MET = "met"
    PAUSED = "paused"
    STOPPED = "stopped"
    # A non-binding (Basic, best-effort) clock: never amber or red (DESIGN.md §4).
    INDICATIVE = "indicative"
    INDICATIVE_PAST_DUE = "indicative-past-due"


# Icon and word per signal; console.js uses the same table for the live countdown.
SIGNAL_LABELS: Final = {
    Signal.ON_TRACK: ("\u25f7", "On track"),
    Signal.WARNING: ("\u26a0", "Warning"),
    Signal.BREACHED: ("\u2716", "Breached"),
    Signal.MET: ("\u2714", "Met"),
    Signal.PAUSED: ("\u23f8", "Paused"),
    Signal.STOPPED: ("\u2013", "Stopped"),
    Signal.INDICATIVE: ("\u2248", "Indicative"),
    Signal.INDICATIVE_PAST_DUE: ("\u2248", "Indicative, past due"),
}


def utc_text(at: datetime | None) -> str:
    """The server's rendering of an instant (UTC); console.js rewrites it in the viewer's zone."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


def iso(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else ""


def time_left_text(seconds: float) -> str:
    """'2 h 05 min left', 'overdue by 3 min', as console.js writes it every second."""
    whole = int(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    elif minutes:
        text = f"{minutes} min {secs:02d} s"
    else:
        text = f"{secs} s"
    return f"{text} left" if seconds > 0 else f"overdue by {text}"


@dataclass(frozen=True, kw_only=True)
class ClockSignal:
    """What the queue shows of a ticket's next clock: its name, whose it is, and where it
    stands. Built from the read model's row alone (`of_row`), or from a clock (ClockView)."""

    name: str
    owner: str
    level: int | None
    binding: bool
    due_at: datetime
    warn_at: datetime | None
    status: ClockStatus
    # A breached response that its line has still not given: it keeps counting, overdue.
    awaited: bool = False

    @classmethod
    def of_row(cls, row: TicketRow) -> ClockSignal | None:
        """The row's next clock (`TicketState.next_clock`, as last recorded), if it has one."""
        if row.next_clock_kind is None or row.next_clock_due_at is None:
            return None
        return cls(
            name=CLOCK_NAMES[row.next_clock_kind],
            owner=(row.next_clock_owner or OwningLine.CONNECTSOFT).label,
            level=row.next_clock_level,
            binding=bool(row.next_clock_binding),
            due_at=row.next_clock_due_at,
            warn_at=row.next_clock_warn_at,
            status=row.next_clock_status or ClockStatus.RUNNING,
            awaited=row.next_clock_awaited,
        )

    @property
    def live(self) -> bool:
        return self.status in (ClockStatus.RUNNING, ClockStatus.WARNED)

    @property
    def counting(self) -> bool:
        """Whether the countdown runs: a live binding clock, or an overdue response still
        awaited. An indicative clock shows its due time instead (DESIGN.md §4)."""
        return (self.live and self.binding) or self.awaited

    @property
    def indicative(self) -> bool:
        """A live clock whose time is only indicative: no SLA, so it never breaches."""
        return self.live and not self.binding

    def signal(self, now: datetime) -> Signal:
        """Where the clock stands at `now`: a live clock past its warning or deadline turns
        before the workflow has recorded it, as the countdown does in the browser."""
        match self.status:
            case ClockStatus.MET:
                return Signal.MET
            case ClockStatus.BREACHED:
                return Signal.BREACHED
            case ClockStatus.PAUSED:
                return Signal.PAUSED
            case ClockStatus.CANCELLED:
                return Signal.STOPPED
        if not self.binding:
            # Never "breached" or red, however far past (DESIGN.md §4).
            return Signal.INDICATIVE_PAST_DUE if now >= self.due_at else Signal.INDICATIVE
        if now >= self.due_at:
            return Signal.BREACHED
        if self.status == ClockStatus.WARNED or (self.warn_at is not None and now >= self.warn_at):
            return Signal.WARNING
        return Signal.ON_TRACK

    def icon(self, now: datetime) -> str:
        return SIGNAL_LABELS[self.signal(now)][0]

    def word(self, now: datetime) -> str:
        return SIGNAL_LABELS[self.signal(now)][1]

    def left(self, now: datetime) -> str:
        return time_left_text((self.due_at - now).total_seconds())


@dataclass(frozen=True, kw_only=True)
class ClockView(ClockSignal):
    """One SLA clock as the ticket page shows it."""

    target: str
    calendar: str
    started_at: datetime
    stopped_at: datetime | None

    @classmethod
    def of(cls, clock: SlaClock, *, awaited: bool = False) -> ClockView:
        return cls(
            name=CLOCK_NAMES[clock.kind],
            owner=clock.owner.label,
            level=clock.level,
            target=clock.target.label or f"{clock.target.minutes} min",
            calendar=clock.target.calendar.value,
            binding=clock.target.binding,
            started_at=clock.started_at,
            due_at=clock.due_at,
            warn_at=clock.warn_at,
            stopped_at=clock.stopped_at,
            status=clock.status,
            awaited=awaited,
        )


def clock_views(state: TicketState) -> list[ClockView]:
    return [ClockView.of(clock, awaited=state.awaited_breach(clock)) for clock in state.clocks]


def next_clock(state: TicketState) -> ClockView | None:
    """What the queue counts down for a ticket (`TicketState.next_clock`), as a view."""
    clock = state.next_clock
    return ClockView.of(clock, awaited=state.awaited_breach(clock)) if clock is not None else None


def may_simulate(principal: Principal) -> bool:
    """Whether the What if page (and its link) is the principal's: the capability
    POST /policy/simulate asks for, admin only (DESIGN.md §11)."""
    return grant(current(), principal, Capability.CATALOG) != Grant.NO


# --- Action forms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    """One field of an action form, its choices resolved for the ticket as it is."""

    name: str
    label: str
    widget: Widget
    required: bool
    rows: int
    max_length: int
    choices: tuple[Choice, ...] = ()

    @classmethod
    def of(cls, field: FormField, state: TicketState) -> FieldView:
        choices = tuple(field.choices(state)) if field.choices else ()
        return cls(
            field.name, field.label, field.widget, field.required, field.rows, field.max_length, choices
        )

    @property
    def groups(self) -> list[tuple[str, list[Choice]]]:
        """The choices by their group, in order (a select's <optgroup>s)."""
        grouped: dict[str, list[Choice]] = {}
        for choice in self.choices:
            grouped.setdefault(choice.group, []).append(choice)
        return list(grouped.items())


@dataclass(frozen=True)
class ActionForm:
    """One action form on the ticket page, rendered from the action's form description."""

    update: str
    title: str
    summary: str
    fields: tuple[FieldView, ...] = ()


def permitted(principal: Principal, definition: ActionDefinition[Any], state: TicketState) -> bool:
    return definition.forbidden(principal, state) is None


def action_form(principal: Principal, definition: ActionDefinition[Any], state: TicketState) -> ActionForm:
    title = definition.title_for(principal)
    fields = tuple(
        FieldView.of(field, state)
        for field in definition.form
        if field.needs is None or definition.forbidden(principal, state, capability=field.needs) is None
    )
    return ActionForm(definition.update, title, definition.summary, fields)


def action_forms(principal: Principal, state: TicketState) -> list[ActionForm]:
    """Exactly the actions the permission table lets `principal` take on this ticket, among
    those that can apply to it now (none once it is closed)."""
    if state.status == TicketStatus.CLOSED:
        return []
    # The definition's own state-only precondition: the action's check still decides (and a
    # refusal shows its sentence); this only keeps forms that cannot apply off the page.
    return [
        action_form(principal, definition, state)
        for definition in ACTIONS
        if definition.routed and permitted(principal, definition, state) and definition.offered_when(state)
    ]
