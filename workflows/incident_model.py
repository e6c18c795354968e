"""A major incident (DESIGN.md §13): its models and the pure decisions its workflow makes.

Pure: no Temporal, no I/O. IncidentWorkflow (workflows/incident.py) is the shell: it feeds the
requests below into `IncidentState`, runs the fan-outs and sweeps as activities
(activities/incidents.py) and answers the `state` query. Every ticket keeps its own clocks and
history; the incident holds what it is about, its link rules, and its updates with their
progress (delivered of total).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from workflows.actions.incident import IncidentId
from workflows.enums import Product, Severity
from workflows.models import Principal
from workflows.outages import OutageTimesProblem, outage_times_problem
from workflows.payload import Payload
from workflows.text import CleanText


def incident_workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class UpdateKind(StrEnum):
    UPDATE = "update"
    RESOLUTION = "resolution"


class LinkRule(Payload):
    """Tickets of a product, of some severities, received in a window (open-ended without `to`)."""

    product: Product
    severities: list[Severity] = Field(min_length=1, max_length=4)
    received_from: datetime
    received_to: datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> LinkRule:
        if self.received_to is not None and self.received_to <= self.received_from:
            raise ValueError("received_to must be after received_from")
        return self

    def matches(self, *, product: Product, severity: Severity, received_at: datetime) -> bool:
        return (
            product == self.product
            and severity in self.severities
            and received_at >= self.received_from
            and (self.received_to is None or received_at < self.received_to)
        )


class IncidentUpdateRecord(Payload):
    """One update (or the resolution) and how far its fan-out has reached."""

    update_id: str
    kind: UpdateKind
    message: str
    at: datetime
    by: Principal
    delivered: int = 0
    # Linked when the fan-out started, but resolved, closed or unlinked before it got there.
    skipped: int = 0
    # The linked open tickets when the fan-out began (None until its first batch has counted).
    total: int | None = None
    # The last ticket id done, in ticket-id order: the next batch starts after it.
    cursor: str | None = None
    done: bool = False


class IncidentOpened(Payload):
    """Workflow input: what the incident is about, as support opened it."""

    incident_id: IncidentId
    title: str
    description: str
    products: list[Product]
    severity: Severity
    # Only these customers' tickets link by rule (None: every customer's).
    customer_ids: list[str] | None = None
    opened_by: Principal
    opened_at: datetime
    # When the outage began, where support says it began before the incident was opened
    # (None: when it was opened). The uptime report counts it (DESIGN.md §12).
    outage_started_at: datetime | None = None
    # How often the incident sweeps for matching tickets the read model shows unlinked, and how
    # many tickets one fan-out activity takes: pinned at opening, like a ticket's terms.
    sweep_seconds: int = Field(default=60, ge=1)
    batch_size: int = Field(default=250, ge=1, le=5000)
    # How often, while it is open, the incident flushes its internal audiences' digests
    # (`ESCALATOR_INCIDENT_DIGEST_SECONDS`, read where the incident is started).
    digest_seconds: float = Field(default=60.0, gt=0)
    # Link rules it opens with: an automatic incident's (workflows/incident_watch_model.py).
    rules: list[LinkRule] = Field(default_factory=list)
    # The watcher that opened it (automatic incidents only): told when the incident resolves.
    watcher_id: str | None = None
    # Set when the workflow continues as new.
    carried_state: IncidentState | None = None

    def ui_summary(self) -> str:
        """'Incident inc-1a2b [Sev 1] identity': its static summary in the Temporal UI. No free
        text: summaries stay readable in an encrypted history (runtime/codec.py)."""
        products = ", ".join(product.value for product in self.products)
        return f"Incident {self.incident_id} [Sev {int(self.severity)}] {products}"

    def ui_details(self) -> str:
        products = ", ".join(product.value for product in self.products)
        opener = "Opened automatically by the system. " if self.watcher_id else ""
        return (
            f"{opener}Products: {products}. Customers: {', '.join(self.customer_ids or ['all'])}. "
            "Link rules, updates and their progress: the `state` query, and "
            f"GET /incidents/{self.incident_id}."
        )


class IncidentState(Payload):
    incident_id: str
    title: str
    description: str
    products: list[Product]
    severity: Severity
    customer_ids: list[str] | None = None
    opened_by: Principal
    opened_at: datetime
    status: IncidentStatus = IncidentStatus.OPEN
    rules: list[LinkRule] = Field(default_factory=list)
    updates: list[IncidentUpdateRecord] = Field(default_factory=list)
    resolution: str | None = None
    resolved_at: datetime | None = None
    # The outage as given at opening and resolving; None for when it opened and resolved
    # (`outage` has both filled in).
    outage_started_at: datetime | None = None
    outage_ended_at: datetime | None = None
    # Tickets the sweeps have linked by rule, over the incident's life.
    linked_by_rule: int = 0
    last_sweep_at: datetime | None = None
    # The incident's page (dedup key = its id): who acknowledged it, and once the acknowledge
    # has gone to the pager (`settle_incident_page`). Acknowledged once; a second is a no-op.
    page_acknowledged_at: datetime | None = None
    page_acknowledged_by: Principal | None = None
    page_acknowledge_sent: bool = False

    @classmethod
    def opened(cls, opened: IncidentOpened) -> IncidentState:
        fields = {
            name: getattr(opened, name) for name in cls.model_fields if name in IncidentOpened.model_fields
        }
        return cls(**fields)

    def outage(self) -> tuple[datetime, datetime | None]:
        """When the incident's outage began and ended (None while it is open): the times given
        at opening and resolving, else when it opened and resolved."""
        return self.outage_started_at or self.opened_at, self.outage_ended_at or self.resolved_at

    def pending(self) -> IncidentUpdateRecord | None:
        """The oldest update whose fan-out has not finished: they go out one at a time, in order."""
        return next((update for update in self.updates if not update.done), None)

    def post(
        self,
        kind: UpdateKind,
        message: str,
        by: Principal,
        at: datetime,
        *,
        outage_ended_at: datetime | None = None,
    ) -> IncidentUpdateRecord:
        """Queue an update (or the resolution, with the outage's end if it is not `at`) under
        the next id: `<incident>-u<n>`."""
        record = IncidentUpdateRecord(
            update_id=f"{self.incident_id}-u{len(self.updates) + 1}", kind=kind, message=message, at=at, by=by
        )
        self.updates.append(record)
        if kind == UpdateKind.RESOLUTION:
            self.status, self.resolution, self.resolved_at = IncidentStatus.RESOLVED, message, at
            self.outage_ended_at = outage_ended_at
        return record

    def acknowledge_page(self, by: Principal, at: datetime) -> bool:
        """Whether this acknowledges the page: False when it was acknowledged before."""
        if self.page_acknowledged_at is not None:
            return False
        self.page_acknowledged_at, self.page_acknowledged_by = at, by
        return True

    def page_acknowledge_due(self) -> bool:
        """Acknowledged, and the pager not yet told."""
        return self.page_acknowledged_at is not None and not self.page_acknowledge_sent

    def matches(
        self, *, customer_id: str, product: Product, severity: Severity, received_at: datetime
    ) -> bool:
        """Whether a ticket falls under one of the incident's rules (and its customer filter)."""
        if self.status != IncidentStatus.OPEN:
            return False
        if self.customer_ids is not None and customer_id not in self.customer_ids:
            return False
        return any(
            rule.matches(product=product, severity=severity, received_at=received_at) for rule in self.rules
        )

    def progress(self) -> str:
        """'u2: 1,240 of 4,020 delivered', what the Temporal UI shows as the current details."""
        pending = self.pending()
        if pending is None:
            done = self.updates[-1] if self.updates else None
            if done is None:
                return f"{self.status.value}; no update yet"
            reached = f"{done.delivered:,} of {done.total or 0:,}"
            return f"{self.status.value}; {done.update_id} delivered to {reached}"
        total = "counting" if pending.total is None else f"{pending.total:,}"
        return f"{pending.update_id} fanning out: {pending.delivered:,} of {total} delivered"


class PostIncidentUpdate(Payload):
    actor: Principal
    message: CleanText = Field(min_length=1, max_length=10_000)


class ResolveIncident(Payload):
    actor: Principal
    resolution: CleanText = Field(min_length=1, max_length=9_000)
    # When the outage ended, where support says it ended before the resolution (None: now).
    outage_ended_at: datetime | None = None

    def outage_problem(self, state: IncidentState, now: datetime) -> OutageTimesProblem | None:
        """Why `outage_ended_at` cannot end the incident's outage: before it began, or after now."""
        if self.outage_ended_at is None:
            return None
        return outage_times_problem(
            received_at=state.opened_at,
            now=now,
            started_at=state.outage()[0],
            ended_at=self.outage_ended_at,
            started_field="outage_started_at",
            ended_field="outage_ended_at",
            since="the incident was opened",
        )


class AcknowledgeIncidentPage(Payload):
    actor: Principal


class IncidentPageAcknowledged(Payload):
    """The `acknowledge-page` update's answer: who acknowledged the page, and when; `already`
    when an earlier request had (nothing more is sent)."""

    acknowledged_at: datetime
    acknowledged_by: Principal
    already: bool = False


class AddLinkRule(Payload):
    actor: Principal
    rule: LinkRule


class FanOutBatch(Payload):
    """Activity input: apply one update to the next batch of the incident's linked open tickets."""

    incident_id: str
    update_id: str
    kind: UpdateKind
    message: str
    actor: Principal
    # When support posted it: each ticket takes it then, if it has recorded nothing since.
    posted_at: datetime | None = None
    after: str | None = None
    batch_size: int = 250
    count_total: bool = False


class FanOutResult(Payload):
    delivered: int
    skipped: int
    # The last ticket id this batch reached; None once no linked open ticket is left after it.
    cursor: str | None
    total: int | None = None


class IncidentRecord(Payload):
    """Activity input: the incident's row in the read model, for the reports (DESIGN.md §12):
    written when it opens (each run) and when it resolves."""

    incident_id: str
    title: str
    products: list[Product]
    severity: Severity
    status: IncidentStatus
    opened_at: datetime
    resolved_at: datetime | None = None
    outage_started_at: datetime
    outage_ended_at: datetime | None = None

    @classmethod
    def of(cls, state: IncidentState) -> IncidentRecord:
        started, ended = state.outage()
        return cls(
            incident_id=state.incident_id,
            title=state.title,
            products=state.products,
            severity=state.severity,
            status=state.status,
            opened_at=state.opened_at,
            resolved_at=state.resolved_at,
            outage_started_at=started,
            outage_ended_at=ended,
        )


class LinkSweep(Payload):
    """Activity input: link every open ticket the read model shows unlinked that a rule matches."""

    incident_id: str
    rules: list[LinkRule]
    customer_ids: list[str] | None = None
    actor: Principal


IncidentOpened.model_rebuild()
