"""Automatic major incidents (DESIGN.md §13): K tickets of Sev 1-2 for one product within a
window open one incident. The models and pure decisions of a product's watcher.

Pure: no Temporal, no I/O. IncidentWatchWorkflow (workflows/incident_watch.py) is the shell:
intake signals it each Sev 1-2 ticket it filed unlinked, with the grouping rule as settings
read it (`AutoIncidentRule`: the watcher reads no settings of its own), and it feeds them into
`WatchState.arrive`, which keeps a sliding window of at most K tickets by their received time.
When K fall within the window and no automatic incident of the watcher's is open, it answers
the burst, and `auto_incident` makes the incident's input: a readable title, the highest
severity seen, the system as its opener and a link rule from the burst's first ticket on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import Field

from workflows.enums import Product, Role, Severity
from workflows.incident_model import IncidentOpened, LinkRule
from workflows.models import Principal
from workflows.payload import Payload

# Who opens an automatic incident (and links its tickets): the system, never a person's key.
AUTO_OPENER: Final = Principal(role=Role.SYSTEM, name="incident-watch")
# The watcher's signals: intake's (a ticket), and its incident's (resolved).
ARRIVED_SIGNAL: Final = "ticket-arrived"
RESOLVED_SIGNAL: Final = "incident-resolved"
# The automatic incidents a watcher remembers having opened (the newest), for the Temporal UI.
OPENED_KEPT: Final = 20


def incident_watch_id(task_queue: str, product: Product) -> str:
    """`incident-watch-<task queue>-<product>`: one watcher per product and deployment."""
    return f"incident-watch-{task_queue}-{product.value}"


def auto_incident_id(product: Product, first_ticket_id: str) -> str:
    """The same burst always names the same incident: a retried start finds it started."""
    return f"inc-auto-{product.value}-{first_ticket_id}"


def duration_text(seconds: float) -> str:
    """'10 min', '1 h', '90 s': the window as a title says it."""
    whole = round(seconds)
    if whole and whole % 3600 == 0:
        return f"{whole // 3600} h"
    if whole and whole % 60 == 0:
        return f"{whole // 60} min"
    return f"{seconds:g} s"


class AutoIncidentRule(Payload):
    """The grouping rule (`ESCALATOR_INCIDENT_AUTO_MIN_TICKETS`, `..._AUTO_WINDOW`) and the
    settings an opened incident pins, as the intake that sent a ticket read them: the watcher
    decides with what its signal carries, never with a table of its own."""

    min_tickets: int = Field(ge=1, le=1000)
    window_seconds: float = Field(gt=0)
    # The severities that count toward a burst, and that the opened incident's rule links.
    severities: list[Severity] = Field(
        default_factory=lambda: [Severity.CRITICAL, Severity.HIGH], min_length=1, max_length=4
    )
    sweep_seconds: int = Field(default=60, ge=1)
    batch_size: int = Field(default=250, ge=1, le=5000)
    digest_seconds: float = Field(default=60.0, gt=0)


class WatchedTicket(Payload):
    ticket_id: str = Field(min_length=1, max_length=40)
    severity: Severity
    received_at: datetime


class TicketArrived(Payload):
    """Signal input (`ticket-arrived`): a Sev 1-2 ticket intake filed unlinked."""

    ticket: WatchedTicket
    rule: AutoIncidentRule


class AutoIncidentResolved(Payload):
    """Signal input (`incident-resolved`): the watcher's incident is resolved."""

    incident_id: str


class Burst(Payload):
    """K tickets within the window, oldest first: what opens an incident."""

    tickets: list[WatchedTicket]

    @property
    def first(self) -> WatchedTicket:
        return self.tickets[0]

    @property
    def severity(self) -> Severity:
        """The highest severity seen (Sev 1 is the highest)."""
        return min(ticket.severity for ticket in self.tickets)


class WatchState(Payload):
    product: Product
    # The tickets within the window, oldest received first; never more than K-1 between bursts.
    window: list[WatchedTicket] = Field(default_factory=list)
    # The automatic incident this watcher opened and has not heard resolved: while it is open,
    # its link rule takes the product's Sev 1-2 tickets and nothing counts toward a new one.
    open_incident_id: str | None = None
    opened: list[str] = Field(default_factory=list)
    # Tickets signalled over the watcher's life (all its runs).
    arrivals: int = 0

    def arrive(self, ticket: WatchedTicket, rule: AutoIncidentRule) -> Burst | None:
        """Count a ticket; the burst it completes, if it completes one."""
        self.arrivals += 1
        if self.open_incident_id is not None or ticket.severity not in rule.severities:
            return None
        if any(seen.ticket_id == ticket.ticket_id for seen in self.window):
            return None  # a retried intake signals the same ticket again
        # Signals from several API replicas may come a little out of order: keep the window by
        # the tickets' received times, and drop what the newest leaves behind.
        window = sorted([*self.window, ticket], key=lambda seen: (seen.received_at, seen.ticket_id))
        since = window[-1].received_at - timedelta(seconds=rule.window_seconds)
        window = [seen for seen in window if seen.received_at >= since]
        if len(window) < rule.min_tickets:
            self.window = window
            return None
        self.window = []
        return Burst(tickets=window[-rule.min_tickets :])

    def opening(self, incident_id: str) -> None:
        self.open_incident_id = incident_id
        self.opened = [*self.opened, incident_id][-OPENED_KEPT:]

    def resolved(self, incident_id: str) -> None:
        if self.open_incident_id == incident_id:
            self.open_incident_id = None


def auto_incident(
    burst: Burst, rule: AutoIncidentRule, *, product: Product, watcher_id: str, now: datetime
) -> IncidentOpened:
    """The incident a burst opens: otherwise a normal incident (update, resolve, unlink)."""
    count, window = len(burst.tickets), duration_text(rule.window_seconds)
    first_at = burst.first.received_at.astimezone(UTC)
    levels = sorted(int(severity) for severity in rule.severities)
    contiguous = len(levels) > 1 and levels == list(range(levels[0], levels[-1] + 1))
    sev = f"{levels[0]}-{levels[-1]}" if contiguous else "/".join(map(str, levels))
    return IncidentOpened(
        incident_id=auto_incident_id(product, burst.first.ticket_id),
        title=f"Automatic: {count} Sev {sev} {product.value} tickets in {window}",
        description=(
            f"Opened by the system: {count} tickets of severity {sev} for {product.value} were "
            f"filed within {window}, the first at {first_at:%Y-%m-%d %H:%M:%S} UTC. The product's "
            f"tickets of severity {sev} filed since then are linked to it."
        ),
        products=[product],
        severity=burst.severity,
        opened_by=AUTO_OPENER,
        opened_at=now,
        sweep_seconds=rule.sweep_seconds,
        batch_size=rule.batch_size,
        digest_seconds=rule.digest_seconds,
        rules=[
            LinkRule(
                product=product,
                severities=sorted(rule.severities),
                received_from=burst.first.received_at,
            )
        ],
        watcher_id=watcher_id,
    )
