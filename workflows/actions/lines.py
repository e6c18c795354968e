"""Who answers for which line, and the bookkeeping several actions share. Pure."""

from __future__ import annotations

from workflows.clocks import RESPONSE_CLOCKS
from workflows.enums import ClockKind, ClockStatus, OwningLine, Role
from workflows.models import Principal, SlaClock, TicketState
from workflows.timeline import Step

_EVERY_LINE = frozenset(OwningLine)


def acknowledging_lines(actor: Principal) -> frozenset[OwningLine]:
    """Whose response clocks an actor's acknowledgement stops: its own line's, or every line's."""
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return _EVERY_LINE
    return frozenset({actor.line}) if actor.line is not None else frozenset()


def answering_line(state: TicketState, actor: Principal) -> OwningLine:
    """The line an acknowledgement or comment speaks for; admins and the system speak for the owner."""
    if actor.role in (Role.ADMIN, Role.SYSTEM) or actor.line is None:
        return state.owning_line
    return actor.line


def speaks_for_owning_line(state: TicketState, actor: Principal) -> bool:
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return True
    return actor.line == state.owning_line


def clocks_acknowledged_by(state: TicketState, actor: Principal) -> list[SlaClock]:
    lines = acknowledging_lines(actor)
    return [c for c in state.clocks if c.kind in RESPONSE_CLOCKS and c.is_live and c.owner in lines]


def end_wait(step: Step) -> None:
    """A wait on the customer ends with a resume, a resolution or a close."""
    state = step.state
    if state.waiting_since is not None:
        state.waited_seconds += max((step.now - state.waiting_since).total_seconds(), 0.0)
        state.waiting_since = None


def binding_clocks_to_stop(state: TicketState) -> list[SlaClock]:
    """Undecided SLA clocks that closing the ticket would stop (periodic updates aside)."""
    return [
        c
        for c in state.clocks
        if c.kind != ClockKind.PERIODIC_UPDATE
        and c.target.binding
        and (c.is_live or c.status == ClockStatus.PAUSED)
    ]
