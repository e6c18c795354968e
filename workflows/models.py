"""The ticket domain as pydantic models.

Every Temporal payload (workflow input, update/signal input, query result, activity input)
is one of these models. They are versioned by adding optional fields, never by renaming.
No Temporal imports here: the pure machine, the API and the activities share them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Tier(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PREMIUM = "premium"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Severity(IntEnum):
    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4

    @property
    def label(self) -> str:
        """ "Sev 1 critical" ... "Sev 4 low"."""
        return f"Sev {int(self)} {self.name.lower()}"


class ProductType(StrEnum):
    PLATFORM = "platform"
    BESPOKE = "bespoke"
    PARTNER_DELIVERED = "partner_delivered"


class Product(StrEnum):
    """What the ticket is about. Platforms by name; bespoke and partner work by kind."""

    IDENTITY = "identity"
    AUDIT = "audit"
    CONFIG = "config"
    BOT = "bot"
    BESPOKE = "bespoke"
    PARTNER_SOLUTION = "partner_solution"


class Channel(StrEnum):
    EMAIL = "email"
    PORTAL = "portal"
    CHAT = "chat"
    ON_CALL = "on_call"


class Category(StrEnum):
    INCIDENT = "incident"
    BUG = "bug"
    PERFORMANCE = "performance"
    SECURITY = "security"
    CONFIGURATION = "configuration"
    QUESTION = "question"
    DOCUMENTATION = "documentation"
    FEATURE_REQUEST = "feature_request"
    # Out of scope: separate services. Listed so the refusal can say where they go.
    CUSTOM_DEVELOPMENT = "custom_development"
    ARCHITECTURE_CONSULTING = "architecture_consulting"
    TRAINING = "training"
    INTEGRATION_DEVELOPMENT = "integration_development"


class CoverageCalendar(StrEnum):
    ALWAYS = "24x7"
    EXTENDED = "extended"
    BUSINESS = "business"


class TicketStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


# A resolved ticket is done with but for reopening; a closed one is done.
CLOSED_STATES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class OwningLine(StrEnum):
    CONNECTSOFT = "connectsoft"
    PARTNER = "partner"

    @property
    def label(self) -> str:
        """Its name on a page: "ConnectSoft", "Partner"."""
        return LINE_LABELS[self][0]

    @property
    def in_sentence(self) -> str:
        """Its name inside a sentence: "ConnectSoft", "the partner's first line"."""
        return LINE_LABELS[self][1]

    @property
    def subject(self) -> str:
        """Its name opening a sentence: "ConnectSoft", "The partner's first line"."""
        return self.in_sentence[:1].upper() + self.in_sentence[1:]


# The one table of line names: (on a page, inside a sentence).
LINE_LABELS: Final = {
    OwningLine.CONNECTSOFT: ("ConnectSoft", "ConnectSoft"),
    OwningLine.PARTNER: ("Partner", "the partner's first line"),
}


class Visibility(StrEnum):
    """Who reads a comment (the `visibility` of its event; DESIGN.md §8 fixes the strings)."""

    PUBLIC = "public"
    INTERNAL = "internal"  # ConnectSoft's own note
    PARTNER_INTERNAL = "partner_internal"  # the partner's own note


class ClockKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    ESCALATION_ACK = "escalation_ack"
    HANDOFF_RESPONSE = "handoff_response"
    RESOLUTION = "resolution"
    PERIODIC_UPDATE = "periodic_update"


class ClockStatus(StrEnum):
    RUNNING = "running"
    WARNED = "warned"
    MET = "met"
    BREACHED = "breached"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class EscalationTrigger(StrEnum):
    # Level 2
    NOT_RESOLVED_IN_INITIAL_RESPONSE = "not_resolved_in_initial_response"
    REQUIRES_TECHNICAL_EXPERTISE = "requires_technical_expertise"
    ARCHITECTURE_OR_DESIGN_QUESTION = "architecture_or_design_question"
    # Level 3
    CRITICAL_BUG_OR_PLATFORM_ISSUE = "critical_bug_or_platform_issue"
    FACTORY_RELATED_PROBLEM = "factory_related_problem"
    REQUIRES_ENGINEERING = "requires_engineering"
    # Level 4
    CRITICAL_PRODUCTION_INCIDENT = "critical_production_incident"
    BUSINESS_CRITICAL_PROBLEM = "business_critical_problem"
    STRATEGIC_ISSUE = "strategic_issue"
    # Set by the system, never accepted from a person.
    SLA_BREACH = "sla_breach"
    CRITICAL_AT_INTAKE = "critical_at_intake"


class HandoffCategory(StrEnum):
    PLATFORM_BUG = "platform_bug"
    FACTORY_RELATED = "factory_related"
    ARCHITECTURE_QUESTION = "architecture_question"
    SECURITY_ISSUE = "security_issue"


class Audience(StrEnum):
    SUPPORT_L1 = "support_l1"
    SUPPORT_L2 = "support_l2"
    ENGINEERING_L3 = "engineering_l3"
    LEADERSHIP_L4 = "leadership_l4"
    # The lead of the top level a Standard or Basic contract is entitled to (L2).
    SUPPORT_LEAD = "support_lead"
    ON_CALL = "on_call"
    CUSTOMER = "customer"
    PARTNER = "partner"
    PARTNER_ON_CALL = "partner_on_call"


class NoticeChannel(StrEnum):
    """How a notice reaches its audience (the `routes` of the ticket's policy version say which)."""

    EMAIL = "email"
    CHAT = "chat"
    PAGER = "pager"


class PageAction(StrEnum):
    """The PagerDuty Events API v2 `event_action` of a page notice."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class EventKind(StrEnum):
    """What happened on a ticket: the `kind` of every event on its timeline."""

    OPENED = "opened"
    CRITICAL_INCIDENT = "critical_incident"
    ACKNOWLEDGED = "acknowledged"
    COMMENTED = "commented"
    ESCALATED = "escalated"
    HANDED_OFF = "handed_off"
    HANDED_BACK = "handed_back"
    SEVERITY_CHANGED = "severity_changed"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESUMED = "resumed"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    UPDATE_OVERDUE = "update_overdue"
    OUTAGE_RECORDED = "outage_recorded"


class Role(StrEnum):
    """Who a principal is (DESIGN.md §11). `system` is the workflow itself and trusted tools."""

    ADMIN = "admin"
    SUPPORT = "support"
    PARTNER = "partner"
    CUSTOMER = "customer"
    SYSTEM = "system"


def workflow_id_for(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


TASK_QUEUE = "tickets"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="ignore")


class Principal(_Model):
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


class ResponseTarget(_Model):
    """N minutes of open time on a coverage calendar."""

    minutes: int = Field(ge=0)
    calendar: CoverageCalendar
    binding: bool = True
    label: str = ""


class TargetOverrides(_Model):
    """Per-contract overrides of policy targets, keyed by severity ("1".."4")."""

    response: dict[str, ResponseTarget] = Field(default_factory=dict)
    handoff: dict[str, ResponseTarget] = Field(default_factory=dict)
    resolution: dict[str, ResponseTarget] = Field(default_factory=dict)
    periodic_update: dict[str, ResponseTarget] = Field(default_factory=dict)
    warn_ratio: float | None = Field(default=None, gt=0, lt=1)
    # The contract's own monthly uptime target in percent (partner-defined, or negotiated).
    uptime: float | None = Field(default=None, gt=0, le=100)


class ContractTerms(_Model):
    """A customer's contract as the catalog stores it. Intake turns it into an Entitlement."""

    contract_id: str
    customer_id: str
    customer_name: str
    tier: Tier
    product_type: ProductType
    timezone: str = "UTC"
    country: str | None = None
    # ISO 3166-2, e.g. "GB-ENG": regional holidays on top of the nationwide ones (DESIGN.md §3).
    subdivision: str | None = None
    coverage_24x7: bool = False
    partner_id: str | None = None
    # The partner's own agreement with ConnectSoft (DESIGN.md §6): its tier and its 24/7
    # option set what ConnectSoft owes on the partner's tickets.
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False
    project: str | None = None
    overrides: TargetOverrides = Field(default_factory=TargetOverrides)
    revision: int = 1


class Entitlement(_Model):
    """The contract terms a ticket runs under, pinned at intake.

    The workflow never reads files or the database to learn its SLA: everything it needs,
    holidays included, is in here.
    """

    policy_version: str
    # The fingerprint of the policy document pinned (workflows/policy.py); None on tickets
    # filed before it was recorded.
    policy_fingerprint: str | None = None
    contract_id: str
    contract_revision: int = 1
    tier: Tier
    product_type: ProductType
    timezone: str = "UTC"
    country: str | None = None
    # ISO 3166-2 ("GB-ENG"): `holidays` are then the subdivision's (DESIGN.md §3).
    subdivision: str | None = None
    holidays: list[date] = Field(default_factory=list)
    # `holidays` holds every public holiday of `country` before this local date. The workflow
    # pins more years (an activity) before any clock could count past it. None: no country,
    # so no holidays to pin.
    holidays_until: date | None = None
    # The IANA time zone data release (e.g. "2025b") intake converted local times with; None
    # on tickets filed before it was recorded.
    tzdata_version: str | None = None
    coverage_24x7: bool = False
    # Keyed by severity number as a string ("1".."4") so the JSON form is stable.
    response_targets: dict[str, ResponseTarget]
    # ConnectSoft's second-line targets after a partner handoff.
    handoff_targets: dict[str, ResponseTarget] = Field(default_factory=dict)
    resolution_targets: dict[str, ResponseTarget] = Field(default_factory=dict)
    periodic_update: dict[str, ResponseTarget] = Field(default_factory=dict)
    warn_ratio: float = 0.75
    max_level: int = Field(ge=1, le=4)
    channels: list[Channel]
    partner_id: str | None = None
    # On a partner ticket, the partner's agreement with ConnectSoft (DESIGN.md §6): ConnectSoft's
    # handoff targets, ladder top, channels and Sev 1 routing follow it; the first line's
    # targets follow `tier` and `coverage_24x7`, the customer's contract with the partner.
    # None on tickets filed before it was pinned: those ran everything on `tier`.
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False
    project: str | None = None

    def response_target(self, severity: Severity) -> ResponseTarget:
        return self.response_targets[str(int(severity))]

    @property
    def connectsoft_tier(self) -> Tier:
        """The tier of the agreement ConnectSoft serves this ticket under (DESIGN.md §6)."""
        return self.partner_tier or self.tier


class DeadlineQuote(_Model):
    """When a first response is due under the default policy: for sales and customers."""

    response_due: datetime
    target: str
    target_minutes: int
    calendar: CoverageCalendar
    binding: bool
    policy_version: str


class TicketOpened(_Model):
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
    # Set when the workflow continues as new: the machine picks up where it was.
    carried_state: TicketState | None = None


class SlaClock(_Model):
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


class TicketEvent(_Model):
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


class Notification(_Model):
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


class Delivery(_Model):
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


class DeliveryOutcome(_Model):
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


class TicketState(_TicketFields, _Model):
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
    # Writes of this ticket to the read model that the database refused on their data
    # (overflow, a value it cannot store, an integrity error): set aside in its quarantine
    # table rather than retried for ever. Above 0, the read model is behind this state.
    records_quarantined: int = 0

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


class Terms(_Model):
    """The few pinned terms a ticket answer shows: which contract, policy and ladder it runs under."""

    policy_version: str
    # The fingerprint of the policy document pinned (workflows/policy.py); None on tickets
    # filed before it was recorded.
    policy_fingerprint: str | None = None
    contract_id: str
    contract_revision: int
    tier: Tier
    product_type: ProductType
    timezone: str
    country: str | None
    coverage_24x7: bool
    max_level: int
    channels: list[Channel]
    partner_id: str | None
    subdivision: str | None = None
    partner_tier: Tier | None = None
    partner_coverage_24x7: bool = False


class TicketView(_TicketFields, _Model):
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
    terms: Terms

    @property
    def pinned(self) -> Terms:
        return self.terms


class TicketRow(_Model):
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
    updated_at: datetime


class RecordedClock(_Model):
    """A clock that changed since the last record, by its index in the ticket's clock list
    (which only ever grows, so the index names the same clock every time)."""

    clock_no: int = Field(ge=0)
    clock: SlaClock


class TicketFacts(_Model):
    """What the reports count per ticket beside its clocks (DESIGN.md §12)."""

    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    # Wall-clock time spent waiting on the customer, which MTTR leaves out.
    waiting_seconds: float = 0
    # A Sev 1's outage, for the uptime report.
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None


class TicketRecord(_Model):
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


class HolidayYears(_Model):
    """Activity input: the public holidays of `country` (and of its ISO 3166-2 `subdivision`,
    if the contract names one) in the years [first_year, stop_year)."""

    country: str
    first_year: int
    stop_year: int
    subdivision: str | None = None


class PinnedHolidays(_Model):
    """Activity result: the holiday dates to pin, for the years asked."""

    dates: list[date]


TicketOpened.model_rebuild()
