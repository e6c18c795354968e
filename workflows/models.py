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
    CLOSED_STATES,
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
from workflows.payload import Payload, in_order
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


# The statuses of a clock still counting. Loops that run at every wakeup over every clock a
# ticket ever had (a long ticket keeps dozens of dead ones) test this tuple, not `is_live`.
LIVE_STATUSES: Final = (ClockStatus.RUNNING, ClockStatus.WARNED)


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
        return self.status in LIVE_STATUSES


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
    # The major incident the ticket was linked to when the notice was made (DESIGN.md §13):
    # its internal audiences then hear of it in the incident's digest, its page is the
    # incident's page (workflows/incident_notices.py). What raised it, for the digest's counts.
    incident_id: str | None = None
    event_kind: EventKind | None = None
    clock_kind: ClockKind | None = None


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
    # Tries made before this activity's: a step's one, when it hands the notice on (issue 18).
    tried: int = 0


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


# The order of the ticket's fields in the payloads recorded before they moved to the bases
# below: TicketState, TicketView and TicketRow each keep it, so that committed histories
# rebuild their records byte for byte (tests/test_changes.py). Never extended: a field added
# since comes after these.
RECORDED_ORDER: Final = (
    "ticket_id",
    "workflow_id",
    "customer_id",
    "partner_id",
    "contract_id",
    "policy_version",
    "title",
    "description",
    "product",
    "product_type",
    "channel",
    "category",
    "tier",
    "severity",
    "status",
    "level",
    "owning_line",
    "received_at",
    "response_due",
    "entitlement",
    "clocks",
    "events",
    "next_seq",
    "last_event_at",
    "sla_breached",
    "partner_sla_breached",
    "updated_at",
    "acknowledged_lines",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "handoff_category",
    "waited_seconds",
    "waiting_since",
    "outage_started_at",
    "outage_ended_at",
    "pages",
    "records_quarantined",
    "terms",
)


class TicketCore(Payload):
    """The ticket's fields that every projection shows by the same name: the state holds them,
    the view carries them, the read-model row stores them (a column each, made from the type:
    store/db.py `add_columns`) and the API answers them (api/schemas.py `TicketPublic`).

    Where a field is declared says where it is shown:

    | declared on      | state    | view     | row | API |
    |------------------|----------|----------|-----|-----|
    | `TicketCore`     | yes      | yes      | yes | yes |
    | `TicketShown`    | yes      | yes      |     | yes |
    | `TicketViewed`   | yes      | yes      |     |     |
    | `TicketComputed` | computed | computed | yes | yes |

    A new field is one line on the class that shows it where it should be (optional, with a
    default, like every payload field), plus the migration of its column for a row field
    (README "Adding a field", tests/test_ticket_projections.py).
    """

    ticket_id: str
    customer_id: str
    title: str
    product: Product
    severity: Severity
    status: TicketStatus
    level: int
    owning_line: OwningLine
    received_at: datetime
    # ConnectSoft's own breaches; the partner's first-line breaches count apart (DESIGN.md §6).
    sla_breached: bool
    partner_sla_breached: bool = False
    # The major incident the ticket is linked to (DESIGN.md §13): its notices to ConnectSoft's
    # own teams are grouped by it, and its updates reach the ticket as ConnectSoft's comments.
    incident_id: str | None = None


class TicketShown(TicketCore):
    """The ticket's fields that the view and the API show, and the read-model row does not."""

    channel: Channel
    category: Category
    # A Sev 1's outage, for the uptime report.
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None
    # Writes of this ticket to the read model that the database refused on their data
    # (overflow, a value it cannot store, an integrity error): set aside in its quarantine
    # table rather than retried for ever. Above 0, the read model is behind this state.
    records_quarantined: int = 0


class TicketViewed(TicketShown):
    """The ticket's fields that an action answers (the view) beside the shown ones."""

    clocks: list[SlaClock] = Field(default_factory=list)
    # When the line that owns the ticket first gave its first response.
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    handoff_category: HandoffCategory | None = None


class TicketComputed(Payload):
    """What the read-model row and the API show that the state and the view compute (the
    properties of `_TicketFields`, by the same name): a new one is a field here and its
    property there."""

    workflow_id: str
    partner_id: str | None
    product_type: ProductType
    tier: Tier
    response_due: datetime | None


class _TicketFields:
    """What the full state and the view answer about a ticket beside their fields: the clocks'
    and the pinned terms' values that the row and the API show (`TicketComputed`).

    `TicketState.row()` fills every field of `TicketRow`, `TicketState.view()` every field of
    `TicketView`, and the API's `TicketPublic.of` every field of its own that is not derived,
    from the attribute of the same name: a field is declared once, on the class that says
    where it is shown (`TicketCore`), never copied by hand (tests/test_ticket_projections.py).
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


@in_order(RECORDED_ORDER)
class TicketState(_TicketFields, TicketViewed):
    description: str
    entitlement: Entitlement
    # Events not yet recorded. Once the read model holds them (and the history holds the
    # activity that wrote them), the workflow drops them: the state stays small however long
    # the ticket lives. The machine numbers them on from `next_seq`.
    events: list[TicketEvent] = Field(default_factory=list)
    next_seq: int = 1
    # When the newest event happened, recorded or not: nothing is ever recorded before it.
    last_event_at: datetime | None = None
    # A ticket is filed unbreached (the view, the row and the API always carry the flag).
    sla_breached: bool = False
    # The lines that have given their first response, in order.
    acknowledged_lines: list[OwningLine] = Field(default_factory=list)
    # Wall-clock time spent waiting on the customer (which MTTR leaves out): the waits that
    # ended, and since when the current one runs. Kept here because past events are not.
    waited_seconds: float = 0
    waiting_since: datetime | None = None
    # The ticket's open incidents on the pager, by audience (on_call, partner_on_call), each
    # triggered or acknowledged. Resolving or closing the ticket resolves them all.
    pages: dict[Audience, PageAction] = Field(default_factory=dict)
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

    def awaited_breach(self, clock: SlaClock) -> bool:
        """A first response (or ConnectSoft's answer to a handoff) that breached and that its
        line has still not given: the most urgent work on the ticket, overdue."""
        return (
            clock.status == ClockStatus.BREACHED
            and clock.kind in (ClockKind.FIRST_RESPONSE, ClockKind.HANDOFF_RESPONSE)
            and clock.owner not in self.acknowledged_lines
            and self.status not in CLOSED_STATES
        )

    @property
    def next_clock(self) -> SlaClock | None:
        """What the queue counts down for the ticket: an overdue response still awaited, else
        the live binding clock due soonest, else the indicative one (DESIGN.md §4: binding work
        first). The row carries it (`next_clock_*`), so the queue orders in SQL alone."""
        overdue = [clock for clock in self.clocks if self.awaited_breach(clock)]
        if overdue:
            return min(overdue, key=lambda clock: clock.due_at)
        live = [clock for clock in self.clocks if clock.is_live]
        return min(live, key=lambda clock: (not clock.target.binding, clock.due_at)) if live else None

    # The row's `next_clock_*` columns: the next clock's fields, None without one.
    @property
    def next_clock_kind(self) -> ClockKind | None:
        return clock.kind if (clock := self.next_clock) else None

    @property
    def next_clock_owner(self) -> OwningLine | None:
        return clock.owner if (clock := self.next_clock) else None

    @property
    def next_clock_level(self) -> int | None:
        return clock.level if (clock := self.next_clock) else None

    @property
    def next_clock_status(self) -> ClockStatus | None:
        return clock.status if (clock := self.next_clock) else None

    @property
    def next_clock_warn_at(self) -> datetime | None:
        return clock.warn_at if (clock := self.next_clock) else None

    @property
    def next_clock_due_at(self) -> datetime | None:
        return clock.due_at if (clock := self.next_clock) else None

    @property
    def next_clock_binding(self) -> bool | None:
        return clock.target.binding if (clock := self.next_clock) else None

    @property
    def next_clock_awaited(self) -> bool:
        return (clock := self.next_clock) is not None and self.awaited_breach(clock)

    def view(self) -> TicketView:
        fields = {name: getattr(self, name) for name in TicketView.model_fields if name != "terms"}
        ent = self.entitlement
        return TicketView(**fields, terms=Terms(**{name: getattr(ent, name) for name in Terms.model_fields}))


@in_order(RECORDED_ORDER)
class TicketView(_TicketFields, TicketViewed):
    """What an action answers: the ticket as it is now, without its description, pending
    events or the entitlement's holidays and target tables (the `state` query has those)."""

    terms: Terms

    @property
    def pinned(self) -> Terms:
        return self.terms


@in_order(RECORDED_ORDER)
class TicketRow(TicketComputed, TicketCore):
    """The read model's row for a ticket: what lists and reports filter on."""

    contract_id: str
    policy_version: str
    updated_at: datetime
    # The clock the console's queue counts down (TicketState.next_clock), so it orders in SQL.
    next_clock_kind: ClockKind | None = None
    next_clock_owner: OwningLine | None = None
    next_clock_level: int | None = None
    next_clock_status: ClockStatus | None = None
    next_clock_warn_at: datetime | None = None
    next_clock_due_at: datetime | None = None
    next_clock_binding: bool | None = None
    next_clock_awaited: bool = False


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


class AppliedAction(Payload):
    """An action the workflow applied (an update, or a signal it took), with its body and the
    time it ran: what `escalator whatif` replays from the read model (issue 20). `seq` is the
    ticket's next event number when it was applied (every action records an event, so no two
    share one): it orders a ticket's actions and keys their rows."""

    seq: int
    at: datetime
    update: str
    body: dict[str, Any]
    signal: bool = False


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
    # What-if's record (issue 20): the opening, with its first record, and the actions applied
    # since the last record.
    opened: TicketOpened | None = None
    actions: list[AppliedAction] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_empty_whatif_inputs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A record without them is byte for byte what it was before they existed: the records of
        # replayed histories stay what they were (tests/test_changes.py).
        data: dict[str, Any] = handler(self)
        if self.opened is None:
            data.pop("opened", None)
        if not self.actions:
            data.pop("actions", None)
        return data


class TicketStep(Payload):
    """Activity input of `notify_and_record`: one step of a ticket in one activity, its notices
    sent first, then its record written with their deliveries (issue 18)."""

    record: TicketRecord
    deliveries: list[Delivery] = Field(default_factory=list)


class StepOutcome(Payload):
    """What `notify_and_record` did: the notices it sent or held, each with whether its outbox
    row says so (False: the record did not land, the next record writes it); the keys of
    those it could not send, which the ticket hands to `deliver_notification`'s retries; and
    whether the record was written (False: the database could not take it, and the ticket
    writes it through `record_ticket`'s retries)."""

    delivered: list[DeliveryOutcome] = Field(default_factory=list)
    unsent: list[str] = Field(default_factory=list)
    written: bool = True


TicketOpened.model_rebuild()
