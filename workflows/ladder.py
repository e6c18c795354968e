"""The escalation ladder (DESIGN.md §5): routing a ticket to a level, and who hears of it.

Pure: no Temporal, no I/O. Level names, audiences and intake routing come from the rules the
ticket's policy version pinned; the top level a ticket may reach is in its entitlement.
"""

from __future__ import annotations

from workflows import clocks
from workflows.enums import Audience, ClockKind, EscalationTrigger, EventKind, OwningLine, Severity
from workflows.models import TicketState
from workflows.terms import ResponseTarget
from workflows.timeline import Step


def response_target(state: TicketState, severity: Severity | None = None) -> ResponseTarget:
    """The response target of the line that owns the ticket now: ConnectSoft's second-line
    target after a partner handoff, the first-line target otherwise."""
    ent = state.entitlement
    key = str(int(severity or state.severity))
    if state.handoff_category and state.owning_line == OwningLine.CONNECTSOFT and ent.handoff_targets:
        return ent.handoff_targets[key]
    return ent.response_targets[key]


def start_acknowledgement_clock(step: Step) -> None:
    """The level a ticket was just routed to must acknowledge within the response target."""
    state = step.state
    clocks.start_clock(step, ClockKind.ESCALATION_ACK, response_target(state), level=state.level)


def escalate(
    step: Step, level: int, trigger: EscalationTrigger, *, actor: str, note: str | None = None
) -> None:
    state = step.state
    previous = state.level
    state.level = level
    who = step.rules.level_names[level]
    summary = f"Escalated L{previous} -> L{level} ({who}): {trigger.value}"
    if note:
        summary += f". {note}"
    event = step.record(
        EventKind.ESCALATED, summary, actor=actor, trigger=trigger.value, from_level=str(previous)
    )
    step.notify_level(event, f"Escalated to L{level}: {state.title}")
    start_acknowledgement_clock(step)


def critical_response(step: Step, actor: str, *, start_ack: bool = True) -> None:
    """Always escalate critical incidents immediately (DESIGN.md §5). On a partner ticket
    ConnectSoft routes and pages as the partner's own agreement says (DESIGN.md §6)."""
    state = step.state
    ent = state.entitlement
    tier = ent.connectsoft_tier
    level = min(step.rules.intake_level(tier, state.severity), ent.max_level)
    routed = level > state.level
    if routed:
        state.level = level
    event = step.record(
        EventKind.CRITICAL_INCIDENT,
        f"Critical incident: routed to L{state.level} ({step.rules.level_names[state.level]})",
        actor=actor,
        trigger=EscalationTrigger.CRITICAL_AT_INTAKE.value,
        line=OwningLine.CONNECTSOFT.value,
    )
    step.notify_level(event, f"Sev 1: {state.title}")
    # Premium (enterprise): leadership hears of it.
    for from_level, audience in step.rules.critical_audiences_by_max_level.items():
        if ent.max_level >= from_level:
            step.notify(event, audience, f"Sev 1 ({tier.label}): {state.title}")
    if tier in step.rules.page_sev1_tiers:
        step.page(
            event, step.rules.line_pages[OwningLine.CONNECTSOFT], f"Sev 1 production incident: {state.title}"
        )
    if routed and start_ack:
        start_acknowledgement_clock(step)


def partner_critical_response(step: Step, actor: str) -> None:
    """A Sev 1 on the partner's first line pages the partner; ConnectSoft L2 is told."""
    state = step.state
    event = step.record(
        EventKind.CRITICAL_INCIDENT,
        "Critical incident on the partner's first line: partner on-call paged, "
        "ConnectSoft L2 given a heads-up",
        actor=actor,
        trigger=EscalationTrigger.CRITICAL_AT_INTAKE.value,
        line=OwningLine.PARTNER.value,
    )
    step.page(event, step.rules.line_pages[OwningLine.PARTNER], f"Sev 1 production incident: {state.title}")
    heads_up = step.rules.partner_critical_heads_up
    step.notify(event, heads_up, f"Heads-up, Sev 1 on a partner ticket: {state.title}")


def top_of_ladder_audience(step: Step) -> Audience:
    """Who hears of a breach at the top of the ladder: the top entitled level's lead."""
    return step.rules.top_of_ladder_audiences[step.state.entitlement.max_level]
