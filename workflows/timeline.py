"""A ticket's timeline: the step in progress, the events it records and the notices they raise.

Pure: no Temporal, no I/O. A step changes the state it is given in place; the machine hands
it either the workflow's own state (validated first, so the step cannot be refused half way)
or a working copy (`working_copy`), so that its pure functions still read as
`state + action + now -> new state + effects`.

A step without texts (`texts=False`, what-if's runs, which read only what a run comes to)
makes its events as plain data (`EventFacts`, on the step, not the state's `events`) with the
machine's per-wakeup sentences left empty, and no notices: only the events that triggered a
page. Everything else, the state included, is as with texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from workflows.enums import Audience, ClockKind, EventKind, NoticeChannel, OwningLine, PageAction, ProductType
from workflows.models import Notification, TicketEvent, TicketState, TicketView
from workflows.policy import TicketRules, rules_for


@dataclass(slots=True)
class EventFacts:
    """A `TicketEvent`'s fields as plain data: what a step without texts records."""

    seq: int
    at: datetime
    kind: EventKind
    summary: str
    actor: str
    level: int | None
    detail: dict[str, str]


# What a step records: a TicketEvent, or without texts its facts.
Recorded: TypeAlias = TicketEvent | EventFacts


@dataclass
class Outcome:
    state: TicketState
    notifications: list[Notification] = field(default_factory=list)
    # Without texts: the events made (the state's `events` has none of them) and, in order, the
    # seq of each event that triggered a page (a notice with `page_action` TRIGGER, with texts).
    facts: list[EventFacts] = field(default_factory=list)
    paged: list[int] = field(default_factory=list)


def working_copy(state: TicketState) -> TicketState:
    """A copy a step may change without touching `state`.

    Only the parts a step changes in place are copied: the clocks and the lists. The
    entitlement, the events already made and the texts are shared: nothing changes them in
    place (pinning holidays replaces the entitlement).
    """
    return state.model_copy(
        update={
            "clocks": [clock.model_copy() for clock in state.clocks],
            "events": list(state.events),
            "acknowledged_lines": list(state.acknowledged_lines),
            "pages": dict(state.pages),
            "incident_updates": list(state.incident_updates),
        }
    )


def _incident(state: TicketState, event: Recorded) -> dict[str, Any]:
    """A linked ticket's notice names its incident and what raised it, for the incident's
    digest (DESIGN.md §13). An unlinked ticket's notice is as it always was: every recorded
    history's notices are made again exactly (tests/test_whatif.py)."""
    if state.incident_id is None:
        return {}
    clock = event.detail.get("clock")
    return {
        "incident_id": state.incident_id,
        "event_kind": event.kind,
        "clock_kind": ClockKind(clock) if clock else None,
    }


def headline(ticket: TicketState | TicketView) -> str:
    """'[Sev 1][Premium] acme / identity: Login down', the static summary in the UI."""
    return (
        f"[Sev {int(ticket.severity)}][{ticket.tier.label}] {ticket.customer_id} / "
        f"{ticket.product.value}: {ticket.title}"
    )


class Step:
    """One transition in progress: the state it changes, the instant, and the notices so far."""

    def __init__(self, state: TicketState, now: datetime, *, texts: bool = True) -> None:
        self.state = state
        self.now = now
        self.texts = texts
        self.notifications: list[Notification] = []
        self.facts: list[EventFacts] = []
        self.paged: list[int] = []
        # Without texts, the notices' keys stand for the notices (one per audience per event).
        self.noticed: set[str] = set()
        # Everything the ticket decides with beyond its entitlement, frozen under its version.
        ent = state.entitlement
        self.rules: TicketRules = rules_for(ent.policy_version, ent.policy_fingerprint)

    def outcome(self) -> Outcome:
        return Outcome(self.state, self.notifications, self.facts, self.paged)

    def record(
        self,
        kind: EventKind,
        summary: str,
        *,
        actor: str = "system",
        at: datetime | None = None,
        **detail: str,
    ) -> Recorded:
        state = self.state
        event: Recorded
        if self.texts:
            event = TicketEvent(
                seq=state.next_seq,
                at=at or self.now,
                kind=kind,
                summary=summary,
                actor=actor,
                level=state.level,
                detail=detail,
            )
            state.events.append(event)
        else:
            event = EventFacts(state.next_seq, at or self.now, kind, summary, actor, state.level, detail)
            self.facts.append(event)
        state.next_seq += 1
        state.last_event_at = event.at
        return event

    def notify(
        self,
        event: Recorded,
        audience: Audience,
        subject: str,
        *,
        page_action: PageAction | None = None,
    ) -> None:
        state = self.state
        if audience == Audience.CUSTOMER and state.entitlement.product_type == ProductType.PARTNER_DELIVERED:
            # The partner owns customer-facing communication (DESIGN.md §6).
            audience = Audience.PARTNER
        key = f"{event.seq}-{audience}"  # a StrEnum formats as its value
        if not self.texts:
            if key in self.noticed:
                return
            self.noticed.add(key)
            if page_action is None:
                self.rules.channel_for(audience)  # a route it lacks fails as with texts
            elif page_action == PageAction.TRIGGER:
                self.paged.append(event.seq)
            return
        if any(note.key == key for note in self.notifications):
            return  # one notice per audience per event
        channel = NoticeChannel.PAGER if page_action else self.rules.channel_for(audience)
        self.notifications.append(
            Notification(
                key=key,
                ticket_id=state.ticket_id,
                audience=audience,
                subject=subject,
                body=f"{headline(state)}\n{event.summary}",
                page=page_action is not None,
                channel=channel,
                page_action=page_action,
                **_incident(state, event),
            )
        )

    def page(self, event: Recorded, audience: Audience, subject: str) -> None:
        """Open (or raise again) the ticket's incident on the audience's pager."""
        self.state.pages[audience] = PageAction.TRIGGER
        self.notify(event, audience, subject, page_action=PageAction.TRIGGER)

    def settle_pages(self, event: Recorded, action: PageAction, audiences: tuple[Audience, ...]) -> None:
        """Acknowledge or resolve the open pages of these audiences: no page stays open on a
        resolved ticket, and an acknowledged ticket stops paging."""
        pages = self.state.pages
        for audience in audiences:
            status = pages.get(audience)
            if status is None or status == action:
                continue
            if action == PageAction.RESOLVE:
                del pages[audience]
            else:
                pages[audience] = action
            verb = "Acknowledged" if action == PageAction.ACKNOWLEDGE else "Resolved"
            self.notify(event, audience, f"{verb}: {self.state.title}", page_action=action)

    def notify_level(self, event: Recorded, subject: str, level: int | None = None) -> None:
        """The level's team hears of it, and the partner on a ticket it owns or handed off."""
        self.notify(event, self.rules.level_audiences[level or self.state.level], subject)
        if self.state.owning_line == OwningLine.PARTNER or self.state.handoff_category:
            self.notify(event, Audience.PARTNER, subject)
