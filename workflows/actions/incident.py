"""A major incident's actions on one of its tickets (DESIGN.md §13): link and unlink, the
incident's update, and its resolution. Each is recorded in the ticket's own history.

They are taken by the incident (its API and its fan-out activity), never routed as
`POST /tickets/{id}/<update>`: the ticket side of /incidents. An update and a resolution carry
the incident's update id, and the ticket applies each id once: a retried fan-out is a no-op
(refused with the rule `incident_update_applied`, which the fan-out counts as delivered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import AwareDatetime, Field

from workflows import clocks
from workflows.actions.acknowledge import responded
from workflows.actions.base import CONFLICT, ActionDefinition, ActionModel, Refusal
from workflows.actions.comment import Comment, customer_update
from workflows.actions.resolve import Resolve, resolve
from workflows.enums import (
    CLOSED_STATES,
    Audience,
    ClockKind,
    ClockStatus,
    EventKind,
    OwningLine,
    Role,
    Visibility,
)
from workflows.models import TicketState
from workflows.permissions import Capability, Grant
from workflows.text import CleanText
from workflows.timeline import Step

IncidentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
UpdateId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

# How many incident update ids a ticket remembers: far more than one fan-out is ever retried
# behind the newest, and the state stays small however many updates an incident posts.
INCIDENT_UPDATES_KEPT: Final = 64
# The refusal of an update id the ticket has applied already: done, not failed.
APPLIED: Final = "incident_update_applied"


class LinkIncident(ActionModel):
    incident_id: IncidentId


class UnlinkIncident(ActionModel):
    incident_id: IncidentId


class IncidentUpdate(ActionModel):
    """The incident's public update, as ConnectSoft's public comment on the ticket."""

    incident_id: IncidentId
    update_id: UpdateId
    message: CleanText = Field(min_length=1, max_length=10_000)
    # When support posted it: the ticket takes it then, if it has recorded nothing since.
    posted_at: AwareDatetime | None = None


class IncidentResolve(ActionModel):
    incident_id: IncidentId
    update_id: UpdateId
    resolution: CleanText = Field(min_length=1, max_length=9_000)
    posted_at: AwareDatetime | None = None


def posted_at(action: IncidentUpdate | IncidentResolve) -> datetime | None:
    return action.posted_at


def _open(state: TicketState) -> bool:
    return state.status not in CLOSED_STATES


def check_link(state: TicketState, action: LinkIncident) -> None:
    if state.incident_id == action.incident_id:
        raise Refusal(CONFLICT, f"The ticket is already linked to incident {state.incident_id}.")
    if state.incident_id is not None:
        raise Refusal(
            CONFLICT, f"The ticket is linked to incident {state.incident_id}; unlink it from that one first."
        )
    if not _open(state):
        raise Refusal(CONFLICT, "The ticket is resolved; only an open ticket joins an incident.")


def link(step: Step, action: LinkIncident) -> None:
    step.state.incident_id = action.incident_id
    step.record(
        EventKind.INCIDENT_LINKED,
        f"Linked to incident {action.incident_id} by {action.actor}",
        actor=str(action.actor),
        incident_id=action.incident_id,
    )


def check_unlink(state: TicketState, action: UnlinkIncident) -> None:
    if state.incident_id != action.incident_id:
        raise Refusal(CONFLICT, f"The ticket is not linked to incident {action.incident_id}.")


def unlink(step: Step, action: UnlinkIncident) -> None:
    step.state.incident_id = None
    step.record(
        EventKind.INCIDENT_UNLINKED,
        f"Unlinked from incident {action.incident_id} by {action.actor}: back on its own",
        actor=str(action.actor),
        incident_id=action.incident_id,
    )


def _check_applies(state: TicketState, incident_id: str, update_id: str) -> None:
    """An update (or resolution) applies once, to an open ticket linked to its incident."""
    if update_id in state.incident_updates:
        raise Refusal(CONFLICT, f"The ticket has applied incident update {update_id} already.", rule=APPLIED)
    if state.incident_id != incident_id:
        raise Refusal(CONFLICT, f"The ticket is not linked to incident {incident_id}.")
    if not _open(state):
        raise Refusal(CONFLICT, "The ticket is resolved; an incident update goes to open tickets only.")


def _remember(state: TicketState, update_id: str) -> None:
    state.incident_updates = [*state.incident_updates, update_id][-INCIDENT_UPDATES_KEPT:]


def check_update(state: TicketState, action: IncidentUpdate) -> None:
    _check_applies(state, action.incident_id, action.update_id)


def apply_update(step: Step, action: IncidentUpdate) -> None:
    """ConnectSoft's public comment. Where ConnectSoft owns the ticket it counts as the comment
    rule and a first response say (DESIGN.md §4); on a ticket the partner owns it is a notice to
    the partner, never the partner's own response (§6)."""
    state = step.state
    _remember(state, action.update_id)
    ours = state.owning_line == OwningLine.CONNECTSOFT
    event = step.record(
        EventKind.COMMENTED,
        f"Incident {action.incident_id} update from ConnectSoft: {action.message[:200]}",
        actor=str(action.actor),
        visibility=Visibility.PUBLIC.value,
        incident_id=action.incident_id,
        update_id=action.update_id,
        line=OwningLine.CONNECTSOFT.value,
    )
    if ours:
        customer_update(step, Comment(actor=action.actor, body=action.message, public=True))
        first = [c for c in clocks.live(state, ClockKind.FIRST_RESPONSE) if c.owner == OwningLine.CONNECTSOFT]
        for clock in first:
            clocks.stop(step, clock, ClockStatus.MET)
        responded(step, [OwningLine.CONNECTSOFT])
    # The customer hears of it; on a partner-delivered ticket the partner does (step.notify).
    step.notify(event, Audience.CUSTOMER, f"Update on {state.title}")


def check_resolve(state: TicketState, action: IncidentResolve) -> None:
    _check_applies(state, action.incident_id, action.update_id)


def apply_resolution(step: Step, action: IncidentResolve) -> None:
    """The ticket resolves with the incident's resolution; then it follows its own rules."""
    _remember(step.state, action.update_id)
    resolution = f"incident {action.incident_id}: {action.resolution}"
    resolve(step, Resolve(actor=action.actor, resolution=resolution))


def _linked_and_open(state: TicketState) -> bool:
    return state.incident_id is not None and _open(state)


# Each definition's `grants` is the incident row (DESIGN.md §11) for a ticket that pinned a
# policy version older than the row (2026.12-2 lists it): support and admins, nobody else.
LINK_INCIDENT: Final = ActionDefinition(
    "link-incident",
    LinkIncident,
    Capability.INCIDENT,
    "Link the ticket to a major incident (DESIGN.md §13).",
    check_link,
    link,
    offered_when=lambda state: state.incident_id is None and _open(state),
    event=EventKind.INCIDENT_LINKED,
    grants={Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES},
    routed=False,
)

UNLINK_INCIDENT: Final = ActionDefinition(
    "unlink-incident",
    UnlinkIncident,
    Capability.INCIDENT,
    "Unlink the ticket from its incident: it is back on its own.",
    check_unlink,
    unlink,
    offered_when=lambda state: state.incident_id is not None,
    event=EventKind.INCIDENT_UNLINKED,
    grants={Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES},
    routed=False,
)

INCIDENT_UPDATE: Final = ActionDefinition(
    "incident-update",
    IncidentUpdate,
    Capability.INCIDENT,
    "The incident's public update, as ConnectSoft's public comment on the ticket, once per update id.",
    check_update,
    apply_update,
    offered_when=_linked_and_open,
    event=EventKind.COMMENTED,
    grants={Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES},
    claimed_at=posted_at,
    routed=False,
)

INCIDENT_RESOLVE: Final = ActionDefinition(
    "incident-resolve",
    IncidentResolve,
    Capability.INCIDENT,
    "Resolve the ticket with its incident's resolution, once per update id.",
    check_resolve,
    apply_resolution,
    offered_when=_linked_and_open,
    event=EventKind.RESOLVED,
    grants={Role.ADMIN: Grant.YES, Role.SUPPORT: Grant.YES},
    claimed_at=posted_at,
    routed=False,
)
