"""IncidentWatchWorkflow (`incident-watch-<task queue>-<product>`): opens a major incident
automatically when K tickets of Sev 1-2 for its product arrive within a window (DESIGN.md §13).

Intake signals-with-start it (`ticket-arrived`) with each Sev 1-2 ticket of the product that it
filed unlinked, and the grouping rule as settings read it. Every signal of every API replica
lands in this one workflow, one at a time, so a burst opens one incident however the intakes
race. On a burst it starts IncidentWorkflow as an abandoned child with a deterministic id and a
link rule from the burst's first ticket on, then links the burst's tickets by signal (intake
and the incident's sweep link the later ones). Until the incident signals `incident-resolved`,
nothing counts toward another. It continues as new every `ARRIVALS_PER_RUN` tickets, so its
history stays bounded. Unsandboxed like TicketWorkflow: it reads time only from
`workflow.now()` and settings only from its signals.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

from workflows import search_attributes as sa
from workflows.actions.incident import LINK_INCIDENT, LinkIncident
from workflows.enums import Product
from workflows.incident import IncidentWorkflow
from workflows.incident_model import incident_workflow_id
from workflows.incident_watch_model import (
    ARRIVED_SIGNAL,
    AUTO_OPENER,
    RESOLVED_SIGNAL,
    AutoIncidentResolved,
    AutoIncidentRule,
    Burst,
    TicketArrived,
    WatchState,
    auto_incident,
)
from workflows.models import workflow_id_for
from workflows.payload import Payload

# A run takes this many tickets, then continues as new: about four history events each.
ARRIVALS_PER_RUN: Final = 1000


class IncidentWatch(Payload):
    """Workflow input: the product watched; the state carried when it continues as new."""

    product: Product
    carried_state: WatchState | None = None


@workflow.defn(name="IncidentWatch", sandboxed=False)
class IncidentWatchWorkflow:
    """One product's watcher: counts Sev 1-2 tickets, opens an incident on a burst."""

    @workflow.init
    def __init__(self, watch: IncidentWatch) -> None:
        self._state = watch.carried_state or WatchState(product=watch.product)
        self._arrivals: list[TicketArrived] = []
        self._taken = 0

    @workflow.run
    async def run(self, watch: IncidentWatch) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._arrivals) or self._run_full())
            while self._arrivals:
                arrival = self._arrivals.pop(0)
                burst = self._state.arrive(arrival.ticket, arrival.rule)
                if burst is not None:
                    await self._open(burst, arrival.rule)
            if self._run_full():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._arrivals:
                    workflow.continue_as_new(IncidentWatch(product=watch.product, carried_state=self._state))

    def _run_full(self) -> bool:
        return self._taken >= ARRIVALS_PER_RUN or workflow.info().is_continue_as_new_suggested()

    async def _open(self, burst: Burst, rule: AutoIncidentRule) -> None:
        """Start the burst's incident (once: its id is the burst's), then link the burst."""
        opened = auto_incident(
            burst,
            rule,
            product=self._state.product,
            watcher_id=workflow.info().workflow_id,
            now=workflow.now(),
        )
        # Tickets that arrive while it starts find it open, and do not count.
        self._state.opening(opened.incident_id)
        # Abandoned: the incident lives on when the watcher continues as new.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                IncidentWorkflow.run,
                opened,
                id=incident_workflow_id(opened.incident_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=sa.for_incident(opened.incident_id),
                static_summary=opened.ui_summary(),
                static_details=opened.ui_details(),
            )
        link = LinkIncident(actor=AUTO_OPENER, incident_id=opened.incident_id)
        await asyncio.gather(*(self._link(ticket.ticket_id, link) for ticket in burst.tickets))

    async def _link(self, ticket_id: str, link: LinkIncident) -> None:
        """The ticket's own `link-incident` signal: it records the link in its history. One that
        has closed meanwhile (its workflow ended) is left out; one the sweep linked first
        refuses it, and the ticket logs the refusal."""
        with contextlib.suppress(FailureError):
            await workflow.get_external_workflow_handle(workflow_id_for(ticket_id)).signal(
                LINK_INCIDENT.signal, link
            )

    # --- signals and the query ---------------------------------------------------------------

    @workflow.signal(name=ARRIVED_SIGNAL)
    def ticket_arrived(self, arrival: TicketArrived) -> None:
        self._arrivals.append(arrival)
        self._taken += 1

    @workflow.signal(name=RESOLVED_SIGNAL)
    def incident_resolved(self, resolved: AutoIncidentResolved) -> None:
        self._state.resolved(resolved.incident_id)

    @workflow.query
    def state(self) -> WatchState:
        return self._state
