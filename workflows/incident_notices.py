"""Notices while a ticket is linked to a major incident (DESIGN.md §13): which are grouped, and
how a digest reads. Pure: no Temporal, no I/O (activities/incident_notices.py sends them).

Outcomes are never grouped: every notice keeps its own outbox row. Only the messages to people
are: an internal audience's notices go into one digest per (incident, audience) per window, and
ConnectSoft's pages into one page per incident (dedup key = the incident id). Customers and
partners, the partner's on-call included, keep their own notices about their own tickets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import Field, model_validator

from workflows.clocks import CLOCK_NAMES
from workflows.enums import INTERNAL_AUDIENCES, Audience, ClockKind, EventKind, NoticeChannel, PageAction
from workflows.models import Notification
from workflows.payload import Payload


class Grouping(StrEnum):
    """How a linked ticket's notice reaches people: in the incident's digest, or as its page."""

    DIGEST = "digest"
    INCIDENT_PAGE = "incident_page"


def grouping_for(notification: Notification) -> Grouping | None:
    """None: sent on its own, as for an unlinked ticket."""
    if notification.incident_id is None or notification.audience not in INTERNAL_AUDIENCES:
        return None
    if notification.page or notification.channel == NoticeChannel.PAGER:
        return Grouping.INCIDENT_PAGE
    if notification.channel == NoticeChannel.CHAT:
        return Grouping.DIGEST
    return None  # no policy routes a team by email today; such a notice goes on its own


# --- Digests -------------------------------------------------------------------------------------


def window_start(at: datetime, seconds: float) -> datetime:
    """The start of the digest window `at` falls in: windows of `seconds`, from the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    elapsed = (at.astimezone(UTC) - epoch).total_seconds()
    return epoch + timedelta(seconds=(elapsed // seconds) * seconds)


def digest_key(incident_id: str, audience: Audience, start: datetime) -> str:
    """The digest's idempotency key: one per (incident, audience, window start)."""
    return f"incident-{incident_id}/digest-{audience.value}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# What raised the notices, counted: (one, many). A clock's events name the clock.
_EVENT_NOUNS: Final = {
    EventKind.OPENED: ("new ticket", "new tickets"),
    EventKind.CRITICAL_INCIDENT: ("Sev 1 routed", "Sev 1s routed"),
    EventKind.ACKNOWLEDGED: ("acknowledgement", "acknowledgements"),
    EventKind.COMMENTED: ("comment", "comments"),
    EventKind.ESCALATED: ("escalation", "escalations"),
    EventKind.HANDED_OFF: ("handoff", "handoffs"),
    EventKind.HANDED_BACK: ("handback", "handbacks"),
    EventKind.SEVERITY_CHANGED: ("severity change", "severity changes"),
    EventKind.WAITING_ON_CUSTOMER: ("wait on the customer", "waits on the customer"),
    EventKind.RESUMED: ("resumption", "resumptions"),
    EventKind.RESOLVED: ("resolution", "resolutions"),
    EventKind.REOPENED: ("reopening", "reopenings"),
    EventKind.CLOSED: ("closing", "closings"),
    EventKind.OUTAGE_RECORDED: ("outage recorded", "outages recorded"),
}
_CLOCK_PLURALS: Final = {
    ClockKind.FIRST_RESPONSE: "first responses",
    ClockKind.ESCALATION_ACK: "escalation acknowledgements",
    ClockKind.HANDOFF_RESPONSE: "ConnectSoft responses to handoffs",
    ClockKind.RESOLUTION: "resolutions",
    ClockKind.PERIODIC_UPDATE: "customer updates",
}


def phrase(count: int, kind: EventKind | None, clock: ClockKind | None) -> str:
    """'1,240 first responses breached', '3 SLA warnings (resolution)', '1 escalation'."""
    many = count != 1
    if clock is not None and kind in (EventKind.SLA_BREACHED, EventKind.UPDATE_OVERDUE):
        noun = _CLOCK_PLURALS[clock] if many else CLOCK_NAMES[clock]
        return f"{count:,} {noun} {'overdue' if kind == EventKind.UPDATE_OVERDUE else 'breached'}"
    if clock is not None and kind == EventKind.SLA_WARNING:
        return f"{count:,} SLA warning{'s' if many else ''} ({CLOCK_NAMES[clock]})"
    if kind in _EVENT_NOUNS:
        one, several = _EVENT_NOUNS[kind]
        return f"{count:,} {several if many else one}"
    return f"{count:,} other notice{'s' if many else ''}"


def digest_text(
    *,
    incident_id: str,
    title: str | None,
    counts: Mapping[tuple[EventKind | None, ClockKind | None], int],
    window_seconds: float,
    open_tickets: int | None = None,
    linked_tickets: int | None = None,
) -> str:
    """'INC-12 identity outage: 1,240 first responses breached in the last 60 s; 3,100 open,
    4,020 linked'. The most frequent first; the tickets' counts only where they are known."""
    name = f"{incident_id} {title}" if title else f"Incident {incident_id}"
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0][0]), str(item[0][1])))
    told = ", ".join(phrase(count, kind, clock) for (kind, clock), count in ordered)
    seconds = f"{window_seconds:g}"
    text = f"{name}: {told} in the last {seconds} s"
    tickets = [
        f"{number:,} {label}"
        for number, label in ((open_tickets, "open"), (linked_tickets, "linked"))
        if number is not None
    ]
    return f"{text}; {', '.join(tickets)}" if tickets else text


# --- The incident's page -------------------------------------------------------------------------


def incident_page_key(incident_id: str, cycle: int, action: PageAction) -> str:
    """The idempotency key of the incident's acknowledge or resolve: once per page cycle (a
    trigger after a resolve opens the next cycle)."""
    return f"incident-{incident_id}/page{cycle}-{action.value}"


def grouped_page_key(incident_id: str) -> str:
    """What a linked ticket's page notice that was not sent records as its group."""
    return f"incident-{incident_id}/page"


def page_dedup_key(notification: Notification) -> str:
    """The pager's dedup key: the incident's id for its page, else the ticket's."""
    if grouping_for(notification) == Grouping.INCIDENT_PAGE and notification.incident_id:
        return notification.incident_id
    return notification.ticket_id


# --- What the incident's workflow asks of them (activities/incident_notices.py) -----------------


class IncidentDigestFlush(Payload):
    """`flush_incident_digests`: send this window's digests of one incident (every incident
    when unset), saying what the incident is and how many tickets it holds, when known."""

    incident_id: str | None = None
    title: str | None = None
    open_tickets: int | None = Field(default=None, ge=0)
    linked_tickets: int | None = Field(default=None, ge=0)


class IncidentPageSettle(Payload):
    """`settle_incident_page`: acknowledge or resolve the incident's page."""

    incident_id: str
    action: PageAction

    @model_validator(mode="after")
    def _settles(self) -> IncidentPageSettle:
        if self.action == PageAction.TRIGGER:
            raise ValueError(
                "an incident's page is triggered by its tickets; settle it with acknowledge or resolve"
            )
        return self


class IncidentNoticesSent(Payload):
    """What a flush or a settle sent: the keys of the digests or page events."""

    keys: list[str] = Field(default_factory=list)
