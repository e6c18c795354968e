"""A principal's reach (workflows/permissions.py `TicketScope`) as SQL over the read model.

Every query that lists or counts tickets for a principal (the ticket list, the reports, the
console) narrows by this one translation.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, false

from store.db import Ticket
from workflows.permissions import TicketScope

AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])

EVERY_TICKET = TicketScope()


def in_scope(stmt: AnySelect, scope: TicketScope) -> AnySelect:
    """`stmt` narrowed to the tickets within `scope`."""
    if scope.nothing:
        return stmt.where(false())
    if scope.customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == scope.customer_id)
    if scope.partner_id is not None:
        stmt = stmt.where(Ticket.partner_id == scope.partner_id)
    return stmt
