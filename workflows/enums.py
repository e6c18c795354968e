"""The ticket domain's closed vocabularies: tiers, severities, statuses, lines, roles, event kinds.

Their values are the strings of the API, the read model, the policy documents and the
recorded histories (DESIGN.md §8): add members, never rename one. No Temporal imports here.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


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


# ConnectSoft's own audiences, in ladder order: each is one support team (store/contacts.py).
# While a ticket is linked to a major incident they hear of it in the incident's digest and
# page, never per ticket; customers and partners keep their own notices (DESIGN.md §13).
INTERNAL_AUDIENCES: Final = (
    Audience.SUPPORT_L1,
    Audience.SUPPORT_L2,
    Audience.ENGINEERING_L3,
    Audience.LEADERSHIP_L4,
    Audience.SUPPORT_LEAD,
    Audience.ON_CALL,
)


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
    # Issue 19: a ticket linked to (or unlinked from) a major incident (DESIGN.md §13).
    INCIDENT_LINKED = "incident_linked"
    INCIDENT_UNLINKED = "incident_unlinked"


class Role(StrEnum):
    """Who a principal is (DESIGN.md §11). `system` is the workflow itself and trusted tools."""

    ADMIN = "admin"
    SUPPORT = "support"
    PARTNER = "partner"
    CUSTOMER = "customer"
    SYSTEM = "system"
