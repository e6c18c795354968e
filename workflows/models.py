"""The ticket's own models: the principal who acts, the workflow's input and state, its
clocks, events and notices, the views of it (state, view, row) and the activity payloads that
record it. The vocabularies are in workflows/enums.py, a contract's terms and the entitlement
a ticket pins in workflows/terms.py, the base model in workflows/payload.py.

Every Temporal payload (workflow input, update/signal input, query result, activity input)
is one of these models. They are versioned by adding optional fields, never by renaming.
No Temporal imports here: the pure machine, the API and the activities share them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from workflows.enums import (
    Audience,
    Category,
    Channel,
    ClockKind,
    ClockStatus,
    EventKind,
    HandoffCategory,
    NoticeChannel,
    OwningLine,
    PageAction,
    Product,
    ProductType,
    Role,
    Severity,
    TicketStatus,
    Tier,
)
from workflows.payload import Payload
from workflows.terms import Entitlement, ResponseTarget, Terms


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


TASK_QUEUE = "tickets"


class Principal(Payload):
    """Who acts: an API key's principal, or the actor a signal names.

    Printed as `role:name (key id)`, e.g. `support:anna (key_ab12cd34ef56)`; that string is
    the `actor` of every event, so two keys are two actors even where they share a name
    (issue 17 §4). A principal without a key (the system, or one recorded before keys were
    named) prints as `role:name`.
    """

    role: Role
    name: str = Field(min_length=1, max_length=100)
    # A support engineer's level on the ladder (1-4).
    level: int | None = Field(default=None, ge=1, le=4)
    partner_id: str | None = Field(default=None, max_length=200)
    customer_id: str | None = Field(default=None, max_length=200)
    # The API key's public id (`key_...`): the identity behind the name.
    key_id: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _scoped(self) -> Principal:
        if self.role == Role.SUPPORT and self.level is None:
            raise ValueError("a support principal has a level (1-4)")
        if self.role == Role.PARTNER and not self.partner_id:
            raise ValueError("a partner principal has a partner_id")
        if self.role == Role.CUSTOMER and not self.customer_id:
            raise ValueError("a customer principal has a customer_id")
        return self

    def __str__(self) -> str:
        name = f"{self.role.value}:{self.name}"
        return f"{name} ({self.key_id})" if self.key_id else name

    @property
    def identity(self) -> str:
        """What scopes idempotency and update ids: the key's id, never its (reusable) name."""
        return self.key_id or f"{self.role.value}:{self.name}"

    @property
    def line(self) -> OwningLine | None:
        """The support line this principal works for; customers work for none."""
        if self.role == Role.PARTNER:
            return OwningLine.PARTNER
        if self.role == Role.CUSTOMER:
            return None
        return OwningLine.CONNECTSOFT


SYSTEM = Principal(role=Role.SYSTEM, name="escalator")


class TicketOpened(Payload):
    """Workflow input: the intake request plus its pinned entitlement."""

    ticket_id: str
    customer_id: str
    title: str
    description: str
    severity: Severity
    product: Product
    channel: Channel
    category: Category
    received_at: datetime
    entitlement: Entitlement
    # The principal who filed it, as `role:name`.
    reporter: str | None = None
    # A Sev 1 may say when its outage began (and ended), for the uptime report.
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None
    # An open incident whose rule matched at intake (DESIGN.md §13): linked from the start.
    incident_id: str | None = None
    # Set when the workflow continues as new: the machine picks up where it was.
    carried_state: TicketState | None = None


class SlaClock(Payload):
    kind: ClockKind
    target: ResponseTarget
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None = None
    status: ClockStatus = ClockStatus.RUNNING
    stopped_at: datetime | None = None
    # Open-calendar seconds spent paused, banked so a recompute keeps them.
    paused_seconds: float = 0
    paused_since: datetime | None = None
    level: int | None = None
    owner: OwningLine = OwningLine.CONNECTSOFT

    @property
    def is_live(self) -> bool:
        return self.status in (ClockStatus.RUNNING, ClockStatus.WARNED)


class TicketEvent(Payload):
    seq: int
    at: datetime
    kind: EventKind
    summary: str
    actor: str = "system"
    level: int | None = None
    detail: dict[str, str] = Field(default_factory=dict)

    @property
    def is_escalation(self) -> bool:
        """What the reports count as an escalation (store/clock_outcomes.escalation_event is
        the same rule in SQL)."""
        return self.kind in ESCALATION_KINDS and self.detail.get("line") != OwningLine.PARTNER.value


# A move up the ladder, or ConnectSoft's critical-incident routing at intake. The partner's own
# critical-incident notice (its line in the detail) pages the partner and routes nothing.
ESCALATION_KINDS: Final = frozenset({EventKind.ESCALATED, EventKind.CRITICAL_INCIDENT})


class Notification(Payload):
    """A message for people: written to the outbox and delivered once on its channel.

    `key` (the event's seq and the audience) makes a retry a no-op, in the outbox and at the
    sink, which gets `<ticket id>/<key>` as its idempotency key.
    """

    key: str
    ticket_id: str
    audience: Audience
    subject: str
    body: str
    page: bool = False
    # Where it goes (the policy's `routes`); None on notices made before routing existed.
    channel: NoticeChannel | None = None
    # On the pager: what this notice does to the ticket's incident (dedup key = ticket id).
    page_action: PageAction | None = None


class Delivery(Payload):
    """Activity input: one notice to send, with what its message shows about the ticket."""

    notification: Notification
    customer_id: str
    partner_id: str | None = None
    headline: str
    severity: int
    level: int
    tier: str
    # The ticket's nearest live clock when the notice was made, shown in the recipient's zone.
    clock: str | None = None
    due_at: datetime | None = None
    # That clock has no SLA (Basic, best effort): its time is indicative (DESIGN.md §4).
    indicative: bool = False


class DeliveryOutcome(Payload):
    """Activity result: how one notice went out. `recorded` says whether the outbox row
    already says so; if not (the database was away), the next `record_ticket` writes it."""

    ticket_id: str
    key: str
    channel: NoticeChannel
    sink: str
    recipients: list[str] = Field(default_factory=list)
    attempts: int = 1
    delivered_at: datetime | None = None
    last_error: str | None = None
    recorded: bool = True


class _TicketFields:
    """What the full state and the view both answer about a ticket, by the names the row and
    the API use: the one place the ticket's projections are read from.

    `TicketState.row()` fills every field of `TicketRow`, `TicketState.view()` every field of
    `TicketView`, and the API's `TicketPublic.of` every field of its own that is not derived,
    from the attribute of the same name: a new field is declared on the models that show it
    (and its column and migration, for the row), never copied by hand
    (tests/test_ticket_projections.py).
    """

    if TYPE_CHECKING:
        ticket_id: str
        clocks: list[SlaClock]

        @property
        def pinned(self) -> Entitlement | Terms: ...

    def clock(self, kind: ClockKind) -> SlaClock | None:
        """The newest clock of a kind."""
        for clock in reversed(self.clocks):
            if clock.kind == kind:
                return clock
        return None

    @property
    def response_due(self) -> datetime | None:
        clock = self.clock(ClockKind.FIRST_RESPONSE)
        return clock.due_at if clock else None

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.ticket_id)

    # The pinned terms the row and the API show beside the ticket's own fields.
    @property
    def tier(self) -> Tier:
        return self.pinned.tier

    @property
    def product_type(self) -> ProductType:
        return self.pinned.product_type

    @property
    def partner_id(self) -> str | None:
        return self.pinned.partner_id

    @property
    def contract_id(self) -> str:
        return self.pinned.contract_id

    @property
    def policy_version(self) -> str:
        return self.pinned.policy_version

    def row(self, updated_at: datetime) -> TicketRow:
        """The read model's row, as of `updated_at`."""
        fields = {name: getattr(self, name) for name in TicketRow.model_fields if name != "updated_at"}
        return TicketRow(**fields, updated_at=updated_at)


class TicketState(_TicketFields, Payload):
    ticket_id: str
    customer_id: str
    title: str
    description: str
    product: Product
    channel: Channel
    category: Category
    severity: Severity
    status: TicketStatus
    level: int
    owning_line: OwningLine
    received_at: datetime
    entitlement: Entitlement
    clocks: list[SlaClock] = Field(default_factory=list)
    # Events not yet recorded. Once the read model holds them (and the history holds the
    # activity that wrote them), the workflow drops them: the state stays small however long
    # the ticket lives. The machine numbers them on from `next_seq`.
    events: list[TicketEvent] = Field(default_factory=list)
    next_seq: int = 1
    # When the newest event happened, recorded or not: nothing is ever recorded before it.
    last_event_at: datetime | None = None
    # ConnectSoft's own breaches; the partner's first-line breaches count apart (DESIGN.md §6).
    sla_breached: bool = False
    partner_sla_breached: bool = False
    # The lines that have given their first response, in order. `acknowledged_at` is when
    # the line that owns the ticket first did.
    acknowledged_lines: list[OwningLine] = Field(default_factory=list)
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    handoff_category: HandoffCategory | None = None
    # Wall-clock time spent waiting on the customer (which MTTR leaves out): the waits that
    # ended, and since when the current one runs. Kept here because past events are not.
    waited_seconds: float = 0
    waiting_since: datetime | None = None
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None
    # The ticket's open incidents on the pager, by audience (on_call, partner_on_call), each
    # triggered or acknowledged. Resolving or closing the ticket resolves them all.
    pages: dict[Audience, PageAction] = Field(default_factory=dict)
    incident_id: str | None = None
    # Writes of this ticket to the read model that the database refused on their data
    # (overflow, a value it cannot store, an integrity error): set aside in its quarantine
    # table rather than retried for ever. Above 0, the read model is behind this state.
    records_quarantined: int = 0
    # The incident updates (and resolution) this ticket has applied, by id, newest last and at
    # most INCIDENT_UPDATES_KEPT: a retried fan-out applies each one once (DESIGN.md §13).
    incident_updates: list[str] = Field(default_factory=list)

    def waiting_seconds(self, now: datetime) -> float:
        """All the time spent waiting on the customer until `now`, the current wait included."""
        running = (now - self.waiting_since).total_seconds() if self.waiting_since else 0.0
        return self.waited_seconds + max(running, 0.0)

    @model_validator(mode="after")
    def _last_event(self) -> TicketState:
        # A state carried over from before `last_event_at` existed still knows its newest event.
        if self.last_event_at is None and self.events:
            self.last_event_at = self.events[-1].at
        return self

    @property
    def pinned(self) -> Entitlement:
        return self.entitlement

    def view(self) -> TicketView:
        fields = {name: getattr(self, name) for name in TicketView.model_fields if name != "terms"}
        ent = self.entitlement
        return TicketView(**fields, terms=Terms(**{name: getattr(ent, name) for name in Terms.model_fields}))


class TicketView(_TicketFields, Payload):
    """What an action answers: the ticket as it is now, without its description, pending
    events or the entitlement's holidays and target tables (the `state` query has those)."""

    ticket_id: str
    customer_id: str
    title: str
    product: Product
    channel: Channel
    category: Category
    severity: Severity
    status: TicketStatus
    level: int
    owning_line: OwningLine
    received_at: datetime
    clocks: list[SlaClock]
    sla_breached: bool
    partner_sla_breached: bool
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    handoff_category: HandoffCategory | None = None
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None
    records_quarantined: int = 0
    incident_id: str | None = None
    terms: Terms

    @property
    def pinned(self) -> Terms:
        return self.terms


class TicketRow(Payload):
    """The read model's row for a ticket: what lists and reports filter on."""

    ticket_id: str
    workflow_id: str
    customer_id: str
    partner_id: str | None
    contract_id: str
    policy_version: str
    title: str
    product: Product
    product_type: ProductType
    tier: Tier
    severity: Severity
    status: TicketStatus
    level: int
    owning_line: OwningLine
    received_at: datetime
    response_due: datetime | None
    sla_breached: bool
    partner_sla_breached: bool = False
    incident_id: str | None = None
    updated_at: datetime

    @model_serializer(mode="wrap")
    def _as_before_incidents(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A ticket linked to no incident records the row it recorded before incidents existed,
        # byte for byte (the record_ticket inputs in committed histories, tests/test_changes.py).
        row: dict[str, Any] = handler(self)
        if row.get("incident_id", "") is None:
            del row["incident_id"]
        return row


class RecordedClock(Payload):
    """A clock that changed since the last record, by its index in the ticket's clock list
    (which only ever grows, so the index names the same clock every time)."""

    clock_no: int = Field(ge=0)
    clock: SlaClock


class TicketFacts(Payload):
    """What the reports count per ticket beside its clocks (DESIGN.md §12)."""

    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    # Wall-clock time spent waiting on the customer, which MTTR leaves out.
    waiting_seconds: float = 0
    # A Sev 1's outage, for the uptime report.
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None


class TicketRecord(Payload):
    """Activity input, one per flush: the ticket's current row, the events not yet recorded
    and the notifications they raised, the clocks that changed and the report facts, written
    in one transaction."""

    row: TicketRow
    events: list[TicketEvent] = Field(default_factory=list)
    notifications: list[Notification] = Field(default_factory=list)
    clocks: list[RecordedClock] = Field(default_factory=list)
    facts: TicketFacts | None = None
    # Deliveries whose outcome the delivery activity could not write itself.
    deliveries: list[DeliveryOutcome] = Field(default_factory=list)


TicketOpened.model_rebuild()
