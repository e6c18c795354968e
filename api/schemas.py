"""Request and response bodies of the HTTP API (Create / Public naming, as in the anchors)."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from workflows.enums import (
    Audience,
    Category,
    Channel,
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    NoticeChannel,
    OwningLine,
    PageAction,
    Product,
    Severity,
    Tier,
)
from workflows.models import (
    SlaClock,
    TicketComputed,
    TicketEvent,
    TicketRow,
    TicketShown,
    TicketState,
    TicketView,
)
from workflows.payload import in_order
from workflows.text import VisibleText
from workflows.timeline import headline


class TicketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=100, examples=["acme"])
    title: VisibleText = Field(min_length=1, max_length=200, examples=["Login down"])
    description: VisibleText = Field(min_length=1, max_length=20_000)
    severity: Severity = Field(description="1 critical, 2 high, 3 medium, 4 low")
    product: Product
    channel: Channel
    category: Category
    outage_started_at: AwareDatetime | None = Field(
        default=None, description="Sev 1 only: when the service went down, for the uptime report"
    )
    outage_ended_at: AwareDatetime | None = Field(
        default=None, description="Sev 1 only: when it came back, if it has"
    )


class ClockPublic(BaseModel):
    kind: ClockKind
    target: str
    target_minutes: int
    calendar: CoverageCalendar
    binding: bool
    indicative: bool = Field(
        description="A live clock without an SLA (Basic, best effort): its due time is only "
        "indicative; it never warns, breaches or escalates, however far past (DESIGN.md §4)"
    )
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    status: ClockStatus
    stopped_at: datetime | None
    level: int | None
    owner: OwningLine

    @classmethod
    def of(cls, clock: SlaClock) -> ClockPublic:
        return cls(
            kind=clock.kind,
            target=clock.target.label,
            target_minutes=clock.target.minutes,
            calendar=clock.target.calendar,
            binding=clock.target.binding,
            indicative=clock.is_live and not clock.target.binding,
            started_at=clock.started_at,
            due_at=clock.due_at,
            warn_at=clock.warn_at,
            status=clock.status,
            stopped_at=clock.stopped_at,
            level=clock.level,
            owner=clock.owner,
        )


class TermsPublic(BaseModel):
    """Which terms the ticket runs under: pinned at intake, never changed by later edits."""

    policy_version: str
    contract_id: str
    contract_revision: int
    timezone: str
    country: str | None
    subdivision: str | None = Field(
        default=None, description="ISO 3166-2; without one, only the country's nationwide holidays"
    )
    coverage_24x7: bool = Field(description="The customer's contract's 24/7 option")
    max_level: int
    channels: list[Channel]
    partner_tier: Tier | None = Field(
        default=None,
        description="Partner tickets: the partner's own ConnectSoft tier, which sets ConnectSoft's "
        "handoff targets, the ladder's top level and the channels (DESIGN.md §6)",
    )
    partner_coverage_24x7: bool = Field(
        default=False, description="Partner tickets: the partner's own 24/7 option with ConnectSoft"
    )


# The order of the answer's fields before they moved to the shared bases (workflows/models.py):
# kept, so that answers and the OpenAPI schema read as they did. Never extended: a field added
# since comes after these.
ANSWERED_ORDER: Final = (
    "ticket_id",
    "workflow_id",
    "customer_id",
    "partner_id",
    "title",
    "summary",
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
    "response_target",
    "binding",
    "sla_breached",
    "partner_sla_breached",
    "outage_started_at",
    "outage_ended_at",
    "read_model",
    "records_quarantined",
    "clocks",
    "terms",
)


@in_order(ANSWERED_ORDER)
class TicketPublic(TicketComputed, TicketShown):
    summary: str
    response_target: str | None
    binding: bool
    # The ticket's own fields, with what the API says of them.
    sla_breached: bool = Field(description="ConnectSoft breached one of its own SLA clocks")
    partner_sla_breached: bool = Field(description="The partner's first line breached one of its clocks")
    records_quarantined: int = Field(default=0, description="The ticket's writes set aside so far")
    read_model: Literal["current", "behind"] = Field(
        default="current",
        description="`behind` once the read model refused a write of this ticket on its data: "
        "the write is quarantined for an operator, and the list, timeline and reports may miss "
        "part of the ticket, which runs on regardless",
    )
    clocks: list[ClockPublic]
    terms: TermsPublic

    @classmethod
    def of(cls, ticket: TicketState | TicketView) -> TicketPublic:
        """From an update's answer (the view) or the full state (the `state` query, intake).

        Every field not derived here is the view's attribute of the same name
        (workflows/models.py `TicketShown`, `TicketComputed`).
        """
        view = ticket.view() if isinstance(ticket, TicketState) else ticket
        derived = derived_fields(view)
        copied = {name: getattr(view, name) for name in cls.model_fields if name not in derived}
        return cls(**copied, **derived)


def derived_fields(view: TicketView) -> dict[str, object]:
    """The fields of TicketPublic that are not the ticket's own under the same name."""
    first = view.clock(ClockKind.FIRST_RESPONSE)
    derived: dict[str, object] = {
        "summary": headline(view),
        "response_target": first.target.label if first else None,
        "binding": first.target.binding if first else False,
        "read_model": "behind" if view.records_quarantined else "current",
        "clocks": [ClockPublic.of(c) for c in view.clocks],
        "terms": TermsPublic(**{name: getattr(view.terms, name) for name in TermsPublic.model_fields}),
    }
    return derived


class TicketList(BaseModel):
    items: list[TicketRow]
    total: int
    limit: int
    offset: int


class Timeline(BaseModel):
    ticket_id: str
    events: list[TicketEvent]


class NotificationPublic(BaseModel):
    """One notice and its delivery: the outbox row."""

    key: str = Field(
        description="`<event seq>-<audience>`: with the ticket id, the idempotency key of every send"
    )
    audience: Audience
    channel: NoticeChannel | None = Field(
        description="email, chat or pager; null on notices made before routing"
    )
    page_action: PageAction | None = None
    subject: str
    recipients: list[str] = Field(
        description="Who it went to: addresses, a chat channel, or the paged audience"
    )
    sink: str | None = Field(
        description="smtp, webhook, pagerduty, or log when no sink is set; grouped for a page "
        "notice the incident's page stands for; null until sent"
    )
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    incident_id: str | None = Field(
        default=None, description="The major incident the ticket was linked to when the notice was made"
    )
    group_key: str | None = Field(
        default=None,
        description="The incident's digest (`incident-<id>/digest-<audience>-<window>`) or page "
        "(`incident-<id>/page`) this notice went out in, instead of on its own",
    )


class NotificationList(BaseModel):
    ticket_id: str
    notifications: list[NotificationPublic]


class Problem(BaseModel):
    """Every error body, as RFC 9457 problem details (`application/problem+json`): `detail` says
    what went wrong and what to do instead, `rule` names the rule that refused the request."""

    type: str = Field(
        description="The problem type: `urn:escalator:problem:<rule>`, or `about:blank` when only "
        "the HTTP status applies",
        examples=["urn:escalator:problem:unknown_ticket"],
    )
    title: str = Field(description="The standard phrase of the status", examples=["Not Found"])
    status: int = Field(ge=400, le=599, examples=[404])
    detail: str
    rule: str = Field(examples=["unknown_ticket"])
    errors: list[dict[str, str]] | None = Field(
        default=None, description="For an invalid request: each `field` with its `message` and error `type`"
    )
