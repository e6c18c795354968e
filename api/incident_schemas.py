"""Request and response bodies of /incidents (DESIGN.md §8, §13)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from workflows.actions.incident import IncidentId
from workflows.enums import PageAction, Product, Severity, TicketStatus
from workflows.incident_model import IncidentStatus, LinkRule, UpdateKind
from workflows.text import VisibleText


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: VisibleText = Field(min_length=1, max_length=200, examples=["Identity platform outage"])
    description: VisibleText = Field(
        min_length=1, max_length=20_000, description="Public: customers may read it"
    )
    product: Product
    severity: Severity
    also_products: list[Product] = Field(
        default_factory=list, max_length=5, description="Further products it touches"
    )
    customer_ids: list[str] | None = Field(
        default=None, min_length=1, max_length=200, description="Only these customers' tickets link by rule"
    )
    outage_started_at: AwareDatetime | None = Field(
        default=None,
        description="When the outage began, if before now (at most 30 days back); the uptime report "
        "counts it for every customer with a linked ticket. Default: now",
    )


class IncidentLinks(BaseModel):
    """Either `ticket_ids`, or a rule: `product`, `severities`, `received_from`[, `received_to`]."""

    model_config = ConfigDict(extra="forbid")

    ticket_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    product: Product | None = None
    severities: list[Severity] | None = Field(default=None, min_length=1, max_length=4)
    received_from: AwareDatetime | None = None
    received_to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> IncidentLinks:
        rule_fields = (self.product, self.severities, self.received_from, self.received_to)
        if self.ticket_ids is not None and any(value is not None for value in rule_fields):
            raise ValueError(
                "send either ticket_ids or a rule (product, severities, received_from), not both"
            )
        if self.ticket_ids is None:
            missing = [
                name
                for name, value in (
                    ("product", self.product),
                    ("severities", self.severities),
                    ("received_from", self.received_from),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"a rule needs {', '.join(missing)} (or send ticket_ids)")
            if self.received_to is not None and self.received_from is not None:
                if self.received_to <= self.received_from:
                    raise ValueError("received_to must be after received_from")
        return self

    def rule(self) -> LinkRule | None:
        if self.ticket_ids is not None:
            return None
        return LinkRule.model_validate(
            {
                "product": self.product,
                "severities": self.severities,
                "received_from": self.received_from,
                "received_to": self.received_to,
            }
        )


class IncidentUpdateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: VisibleText = Field(min_length=1, max_length=10_000)


class IncidentResolveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: VisibleText = Field(min_length=1, max_length=9_000)
    outage_ended_at: AwareDatetime | None = Field(
        default=None,
        description="When the outage ended, if before now (not before it began). Default: now",
    )


class IncidentUpdatePublic(BaseModel):
    update_id: str
    kind: UpdateKind
    message: str
    at: datetime
    by: str
    delivered: int | None = Field(description="Linked open tickets that have it; null for a partner's key")
    total: int | None = Field(
        description="Linked open tickets when it went out (null until counted, and for a partner's key)"
    )
    done: bool


class LinkedTicket(BaseModel):
    ticket_id: str
    customer_id: str
    severity: Severity
    status: TicketStatus
    response_due: datetime | None
    sla_breached: bool


class IncidentPagePublic(BaseModel):
    """The incident's page on ConnectSoft's on-call (PagerDuty `dedup_key` = the incident id)."""

    incident_id: str
    status: PageAction = Field(description="What the pager was last sent: trigger, acknowledge or resolve")
    triggered_at: datetime = Field(description="When the first linked ticket that paged triggered it")
    acknowledged_at: datetime | None = Field(description="When support acknowledged it (null: not yet)")
    acknowledged_by: str | None


class IncidentPublic(BaseModel):
    incident_id: IncidentId
    title: str
    description: str
    products: list[Product]
    severity: Severity
    status: IncidentStatus
    opened_at: datetime
    opened_by: str = Field(description="Who opened it: a key's principal, or `system:incident-watch`")
    resolution: str | None
    resolved_at: datetime | None
    outage_started_at: datetime = Field(description="Given when opened, else when it opened")
    outage_ended_at: datetime | None = Field(
        description="Given when resolved, else when it resolved; null while open"
    )
    rules: list[LinkRule]
    # Over the caller's reach: a partner's counts and list are its customers' tickets only.
    linked: int
    open: int
    met: int = Field(description="Linked tickets whose first response was met")
    breached: int = Field(description="Linked tickets whose first response breached")
    updates: list[IncidentUpdatePublic]
    tickets: list[LinkedTicket]
    page: IncidentPagePublic | None = Field(
        default=None,
        description="The incident's page; null until a linked ticket pages (and for a partner's key)",
    )


class IncidentSummary(BaseModel):
    incident_id: str
    title: str
    status: IncidentStatus
    severity: Severity
    products: list[Product]
    opened_at: datetime


class IncidentList(BaseModel):
    items: list[IncidentSummary]


class LinksDone(BaseModel):
    incident_id: str
    linked: list[str] = Field(description="The tickets linked by id now")
    rule: LinkRule | None = Field(description="The rule added: it links what matches, now and while open")
