"""Who may see and do what (DESIGN.md §11), as data, and the checks that read it.

Pure: no Temporal, no I/O. The machine checks every action against the table of the policy
version the ticket pinned (workflows/policy.py), in the update's validator and before a
signal is applied alike, so the API and a system that signals Temporal directly obey one table.
Reach comes first: a ticket outside a principal's reach is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

from workflows.enums import OwningLine, ProductType, Role
from workflows.models import Principal, TicketState


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
    # Major incidents (DESIGN.md §13): open, link, update and resolve one; read one.
    INCIDENT = "incident"
    READ_INCIDENT = "read-incident"


class Grant(StrEnum):
    """One cell of the table. Anything but NO is allowed, with the restriction it names."""

    YES = "yes"
    NO = "no"
    # Acknowledge stops only the clocks of the principal's own line.
    OWN_LINE_CLOCKS = "own line's clocks"
    # Support resolves ConnectSoft's own tickets; the partner resolves with its customer.
    NON_PARTNER_TICKETS = "non-partner tickets"
    # Support escalates at most one level above its own, but a trigger the policy names
    # (`escalate_any_level_triggers`) may go straight to any entitled level.
    ONE_LEVEL_ABOVE_OWN = "one level above its own"
    # While ConnectSoft owns a partner ticket, the partner may only raise the severity.
    ONLY_RAISE_WHILE_CONNECTSOFT_OWNS = "only raise while ConnectSoft owns the ticket"
    # The partner resolves its tickets once ConnectSoft has handed them back.
    ONCE_HANDED_BACK = "once handed back"
    # While ConnectSoft owns a partner ticket, the partner closes it only with a reason.
    WITH_REASON_WHILE_CONNECTSOFT_OWNS = "with a reason while ConnectSoft owns the ticket"
    # A partner reads the incidents that touch its customers' tickets, limited to those tickets.
    ITS_CUSTOMERS_TICKETS = "those touching its customers' tickets, limited to them"


class Reach(StrEnum):
    """Whose tickets a role reaches at all."""

    ALL = "all"
    OWN_PARTNER = "its partner's customers"
    OWN_CUSTOMER = "its own"


class Rules(Protocol):
    """The part of a policy version (workflows/policy.py `TicketRules`) these checks read."""

    @property
    def reach(self) -> Mapping[Role, Reach]: ...
    @property
    def permissions(self) -> Mapping[Capability, Mapping[Role, Grant]]: ...
    @property
    def forbidden_because(self) -> Mapping[Capability, Mapping[Role, str]]: ...
    @property
    def escalate_any_level_triggers(self) -> frozenset[Any]: ...


YES, NO = Grant.YES, Grant.NO
# The table itself (DESIGN.md §11, row by row), reach, and why a cell says no are in each
# policy version's document (policies/<version>.json): a ticket is judged by the one it pinned.


@dataclass(frozen=True)
class TicketScope:
    """The tickets a principal reaches, as filters: the one statement of reach.

    Only `customer_id`'s tickets, only the tickets of `partner_id`'s customers, both, or (both
    None) every ticket; `nothing` for a role the reach table does not name. `can_reach` judges
    one ticket by it, and every read-model query applies it as SQL (store/scope.py).
    """

    customer_id: str | None = None
    partner_id: str | None = None
    nothing: bool = False

    @classmethod
    def of(cls, rules: Rules, principal: Principal) -> TicketScope:
        if principal.role == Role.SYSTEM:
            return cls()
        match rules.reach.get(principal.role):
            case Reach.ALL:
                return cls()
            case Reach.OWN_PARTNER if principal.partner_id:
                return cls(partner_id=principal.partner_id)
            case Reach.OWN_CUSTOMER if principal.customer_id:
                return cls(customer_id=principal.customer_id)
        return cls(nothing=True)

    def admits(self, *, customer_id: str, partner_id: str | None) -> bool:
        """Whether a ticket of `customer_id` (delivered by `partner_id`) is in the scope."""
        if self.nothing:
            return False
        if self.customer_id is not None and customer_id != self.customer_id:
            return False
        return self.partner_id is None or partner_id == self.partner_id


def can_reach(rules: Rules, principal: Principal, *, customer_id: str, partner_id: str | None) -> bool:
    """Whether a ticket of `customer_id` (delivered by `partner_id`) is within reach at all."""
    return TicketScope.of(rules, principal).admits(customer_id=customer_id, partner_id=partner_id)


def grant(
    rules: Rules, principal: Principal, capability: str, row: Mapping[Role, Grant] | None = None
) -> Grant:
    """The cell of the pinned table; for a capability the table does not list (an action
    newer than the policy version), the cell of `row`, the action definition's own grants."""
    if principal.role == Role.SYSTEM:
        return YES
    table = cast(Mapping[str, Mapping[Role, Grant]], rules.permissions)
    return table.get(capability, row or {}).get(principal.role, NO)


def forbidden_reason(
    rules: Rules,
    principal: Principal,
    capability: str,
    *,
    state: TicketState | None = None,
    action: Any = None,
    row: Mapping[Role, Grant] | None = None,
) -> str | None:
    """None if `principal` may use `capability` on a ticket within reach; else why not.

    Without a ticket (`state`), a restricted cell allows: the ticket decides when there is one.
    """
    cell = grant(rules, principal, capability, row)
    if cell == NO:
        because = cast(Mapping[str, Mapping[Role, str]], rules.forbidden_because)
        return because.get(capability, {}).get(
            principal.role, f"A {principal.role.value} key may not {str(capability).replace('-', ' ')}."
        )
    if state is None:
        return None
    return _restriction(rules, cell, principal, state, action)


def _restriction(
    rules: Rules, cell: Grant, principal: Principal, state: TicketState, action: Any
) -> str | None:
    partner_ticket = state.entitlement.product_type == ProductType.PARTNER_DELIVERED
    connectsoft_owns = partner_ticket and state.owning_line == OwningLine.CONNECTSOFT
    match cell:
        case Grant.NON_PARTNER_TICKETS if partner_ticket:
            return (
                "A partner-delivered ticket is resolved by the partner with its customer; "
                "hand it back instead."
            )
        case Grant.ONE_LEVEL_ABOVE_OWN:
            level, own = getattr(action, "level", None), principal.level
            trigger = getattr(action, "trigger", None)
            if level is None or own is None or level <= own + 1:
                return None
            if trigger in rules.escalate_any_level_triggers:
                return None
            anyway = ", ".join(sorted(t.value for t in rules.escalate_any_level_triggers))
            return f"A Level {own} engineer escalates at most to L{own + 1}" + (
                f"; name {anyway} to go straight to L{level}." if anyway else "."
            )
        case Grant.ONLY_RAISE_WHILE_CONNECTSOFT_OWNS if connectsoft_owns:
            severity = getattr(action, "severity", None)
            if severity is not None and severity > state.severity:
                return "While ConnectSoft owns the ticket, the partner may only raise its severity."
        case Grant.ONCE_HANDED_BACK if connectsoft_owns:
            return "ConnectSoft owns this ticket now; it resolves it, or hands it back to you first."
        case Grant.WITH_REASON_WHILE_CONNECTSOFT_OWNS if connectsoft_owns:
            note = getattr(action, "note", None)
            if action is not None and not (note and note.strip()):
                return (
                    "ConnectSoft owns this ticket now; to close it, give the reason in the note "
                    "(for example, the customer withdrew it)."
                )
    return None
