"""What the console's pages show of major incidents (DESIGN.md §11, §13), through
api/incidents_service.py's rows: who reads and who manages them, a linked ticket's banner, and
the open incidents a ticket may join."""

from __future__ import annotations

from typing import Any

from api import incidents_service as service
from api.errors import ApiError
from workflows.models import Principal


def may_read_incidents(principal: Principal) -> bool:
    """The nav's link: the incident read row (support, admin, a partner limited to its customers)."""
    return service.read_scope(principal) is not None


def may_manage_incidents(principal: Principal) -> bool:
    try:
        service.check_manages(principal)
    except ApiError:
        return False
    return True


async def open_incidents(*, client: Any, db: Any, principal: Principal, task_queue: str) -> list[Any]:
    """The open incidents a ticket may join, for the ticket page's "Link to incident" form."""
    if not may_manage_incidents(principal):
        return []
    return await service.list_incidents(
        client=client, session=db, principal=principal, task_queue=task_queue, open_only=True
    )


async def banner(*, client: Any, principal: Principal, incident_id: str | None) -> dict[str, Any] | None:
    """What a linked ticket's page says of its incident: its title, and a link for a reader."""
    if incident_id is None:
        return None
    try:
        state = await service.incident_state(client=client, incident_id=incident_id)
    except ApiError:
        return {"incident_id": incident_id, "title": None, "readable": False}
    return {
        "incident_id": incident_id,
        "title": state.title,
        "status": state.status,
        "readable": may_read_incidents(principal),
    }
