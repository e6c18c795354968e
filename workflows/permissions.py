"""Who may see and do what (DESIGN.md §11), as data, and the checks that read it.

Pure: no Temporal, no I/O. The machine checks every action against this table, for updates
and signals alike, so the API and a system that signals Temporal directly obey one table.
Reach comes first: a ticket outside a principal's reach is "not found", never "forbidden".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from workflows.models import Principal, ProductType, Role


class Capability(StrEnum):
    FILE = "file"
    READ = "read"
    COMMENT = "comment"
    INTERNAL_NOTE = "internal-note"
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"
    HANDOFF = "handoff"
    HANDBACK = "handback"
    CHANGE_SEVERITY = "change-severity"
    WAIT_ON_CUSTOMER = "wait-on-customer"
    RESUME = "resume"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    OUTAGE = "outage"
    READ_NOTIFICATIONS = "read-notifications"
    CATALOG = "catalog"


class Grant(StrEnum):
    """One cell of the table. Anything but NO is allowed, with the restriction it names."""

    YES = "yes"
    NO = "no"
    # Acknowledge stops only the clocks of the principal's own line.
    OWN_LINE_CLOCKS = "own line's clocks"
    # Support resolves ConnectSoft's own tickets; the partner resolves with its customer.
    NON_PARTNER_TICKETS = "non-partner tickets"


YES, NO = Grant.YES, Grant.NO
ADMIN, SUPPORT, PARTNER, CUSTOMER = Role.ADMIN, Role.SUPPORT, Role.PARTNER, Role.CUSTOMER

# DESIGN.md §11, row by row. Reach (whose tickets) is `can_reach`; this is what may be done
# to a ticket within reach. A system principal (the workflow, a trusted tool) may do all.
PERMISSIONS: Final[dict[Capability, dict[Role, Grant]]] = {
    Capability.FILE: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.READ: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.COMMENT: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.INTERNAL_NOTE: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: NO},
    Capability.ACKNOWLEDGE: {
        ADMIN: YES,
        SUPPORT: Grant.OWN_LINE_CLOCKS,
        PARTNER: Grant.OWN_LINE_CLOCKS,
        CUSTOMER: NO,
    },
    Capability.ESCALATE: {ADMIN: YES, SUPPORT: YES, PARTNER: NO, CUSTOMER: NO},
    Capability.HANDOFF: {ADMIN: YES, SUPPORT: NO, PARTNER: YES, CUSTOMER: NO},
    Capability.HANDBACK: {ADMIN: YES, SUPPORT: YES, PARTNER: NO, CUSTOMER: NO},
    Capability.CHANGE_SEVERITY: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: NO},
    Capability.WAIT_ON_CUSTOMER: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: NO},
    Capability.RESUME: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.RESOLVE: {ADMIN: YES, SUPPORT: Grant.NON_PARTNER_TICKETS, PARTNER: YES, CUSTOMER: NO},
    Capability.REOPEN: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.CLOSE: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: YES},
    Capability.OUTAGE: {ADMIN: YES, SUPPORT: YES, PARTNER: YES, CUSTOMER: NO},
    # How each notice was delivered (issue 9): ConnectSoft's own operations record.
    Capability.READ_NOTIFICATIONS: {ADMIN: YES, SUPPORT: YES, PARTNER: NO, CUSTOMER: NO},
    Capability.CATALOG: {ADMIN: YES, SUPPORT: NO, PARTNER: NO, CUSTOMER: NO},
}

# Why a cell says no, in words a person can act on.
FORBIDDEN_BECAUSE: Final[dict[tuple[Capability, Role], str]] = {
    (Capability.INTERNAL_NOTE, CUSTOMER): "Customers add public comments; internal notes are for "
    "the support lines.",
    (Capability.ACKNOWLEDGE, CUSTOMER): "Acknowledging is the support line's first response; "
    "add a comment instead.",
    (Capability.ESCALATE, PARTNER): "Partners hand off to ConnectSoft's second line instead of "
    "escalating; use handoff.",
    (Capability.ESCALATE, CUSTOMER): "Customers cannot escalate; add a comment saying what is at "
    "stake and the support line will escalate.",
    (Capability.HANDOFF, SUPPORT): "Only the partner's first line hands a ticket off to ConnectSoft.",
    (Capability.HANDOFF, CUSTOMER): "Only the partner's first line hands a ticket off to ConnectSoft.",
    (Capability.HANDBACK, PARTNER): "Only ConnectSoft hands a ticket back to the partner.",
    (Capability.HANDBACK, CUSTOMER): "Only ConnectSoft hands a ticket back to the partner.",
    (Capability.CHANGE_SEVERITY, CUSTOMER): "Customers cannot change the severity; add a comment "
    "explaining the impact and the support line will re-assess it.",
    (Capability.WAIT_ON_CUSTOMER, CUSTOMER): "Only the support line puts a ticket on hold for the customer.",
    (Capability.OUTAGE, CUSTOMER): "The support line records outages; add a comment saying when "
    "it began and ended.",
    (Capability.RESOLVE, CUSTOMER): "The support line resolves a ticket; close it to withdraw it instead.",
    (Capability.READ_NOTIFICATIONS, PARTNER): "Delivery records are ConnectSoft's; the ticket's "
    "timeline shows what happened on it.",
    (Capability.READ_NOTIFICATIONS, CUSTOMER): "Delivery records are ConnectSoft's; the ticket's "
    "timeline shows what happened on it.",
}


def can_reach(principal: Principal, *, customer_id: str, partner_id: str | None) -> bool:
    """Whether a ticket of `customer_id` (delivered by `partner_id`) is within reach at all."""
    match principal.role:
        case Role.ADMIN | Role.SUPPORT | Role.SYSTEM:
            return True
        case Role.PARTNER:
            return partner_id is not None and partner_id == principal.partner_id
        case Role.CUSTOMER:
            return customer_id == principal.customer_id
    return False


def grant(principal: Principal, capability: Capability) -> Grant:
    if principal.role == Role.SYSTEM:
        return YES
    return PERMISSIONS[capability][principal.role]


def forbidden_reason(
    principal: Principal, capability: Capability, *, product_type: ProductType | None = None
) -> str | None:
    """None if `principal` may use `capability` on a ticket within reach; else why not."""
    cell = grant(principal, capability)
    if cell == NO:
        return FORBIDDEN_BECAUSE.get(
            (capability, principal.role),
            f"A {principal.role.value} key may not {capability.value.replace('-', ' ')}.",
        )
    if cell == Grant.NON_PARTNER_TICKETS and product_type == ProductType.PARTNER_DELIVERED:
        return (
            "A partner-delivered ticket is resolved by the partner with its customer; hand it back instead."
        )
    return None
