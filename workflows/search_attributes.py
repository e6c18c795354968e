"""Typed search attributes of a ticket workflow (DESIGN.md §8), and of an incident's (§13)."""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from workflows.incident_model import IncidentStatus
from workflows.models import TicketState

TICKET_STATUS = SearchAttributeKey.for_keyword("TicketStatus")
SUPPORT_TIER = SearchAttributeKey.for_keyword("SupportTier")
PRODUCT_TYPE = SearchAttributeKey.for_keyword("ProductType")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
PARTNER_ID = SearchAttributeKey.for_keyword("PartnerId")
OWNING_LINE = SearchAttributeKey.for_keyword("OwningLine")
TICKET_SEVERITY = SearchAttributeKey.for_int("TicketSeverity")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
# ConnectSoft's own breaches; the partner's first-line breaches are PartnerSlaBreached.
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
PARTNER_SLA_BREACHED = SearchAttributeKey.for_bool("PartnerSlaBreached")
RESPONSE_DUE_AT = SearchAttributeKey.for_datetime("ResponseDueAt")
# The incident a ticket is linked to; on an incident's own workflow, its id, beside its status.
INCIDENT_ID = SearchAttributeKey.for_keyword("IncidentId")
INCIDENT_STATUS = SearchAttributeKey.for_keyword("IncidentStatus")

ALL_KEYS = (
    TICKET_STATUS,
    SUPPORT_TIER,
    PRODUCT_TYPE,
    CUSTOMER_ID,
    PARTNER_ID,
    OWNING_LINE,
    TICKET_SEVERITY,
    ESCALATION_LEVEL,
    SLA_BREACHED,
    PARTNER_SLA_BREACHED,
    RESPONSE_DUE_AT,
    INCIDENT_ID,
    INCIDENT_STATUS,
)
# What a ticket unsets when it no longer has a value (unlinked from its incident).
UNSET_WHEN_ABSENT = (INCIDENT_ID,)


def for_ticket(state: TicketState) -> TypedSearchAttributes:
    ent = state.entitlement
    pairs: list[SearchAttributePair] = [
        SearchAttributePair(TICKET_STATUS, state.status.value),
        SearchAttributePair(SUPPORT_TIER, ent.tier.value),
        SearchAttributePair(PRODUCT_TYPE, ent.product_type.value),
        SearchAttributePair(CUSTOMER_ID, state.customer_id),
        SearchAttributePair(OWNING_LINE, state.owning_line.value),
        SearchAttributePair(TICKET_SEVERITY, int(state.severity)),
        SearchAttributePair(ESCALATION_LEVEL, state.level),
        SearchAttributePair(SLA_BREACHED, state.sla_breached),
        SearchAttributePair(PARTNER_SLA_BREACHED, state.partner_sla_breached),
    ]
    if ent.partner_id:
        pairs.append(SearchAttributePair(PARTNER_ID, ent.partner_id))
    if state.response_due is not None:
        pairs.append(SearchAttributePair(RESPONSE_DUE_AT, state.response_due))
    if state.incident_id is not None:
        pairs.append(SearchAttributePair(INCIDENT_ID, state.incident_id))
    return TypedSearchAttributes(pairs)


def for_incident(incident_id: str) -> TypedSearchAttributes:
    """An incident's workflow as it starts: its id, and open (DESIGN.md §13)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(INCIDENT_ID, incident_id),
            SearchAttributePair(INCIDENT_STATUS, IncidentStatus.OPEN.value),
        ]
    )
