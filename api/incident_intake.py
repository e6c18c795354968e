"""Intake's side of a major incident (DESIGN.md §13): a ticket that an open incident's rule
matches is linked from its start. The open incidents and their rules are cached for a few
seconds per task queue; what the cache misses, the incident's own sweep links soon after.

With automatic incidents on (`ESCALATOR_INCIDENT_AUTO_MIN_TICKETS` > 0), a Sev 1-2 ticket filed
unlinked is also signalled to its product's watcher (workflows/incident_watch.py), which opens
an incident on a burst. Nothing else runs at intake: not for Sev 3-4, not with the setting 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError

from runtime.settings import Settings
from workflows.enums import Product, Severity
from workflows.incident import IncidentWorkflow
from workflows.incident_model import IncidentState
from workflows.incident_watch import IncidentWatch, IncidentWatchWorkflow
from workflows.incident_watch_model import (
    ARRIVED_SIGNAL,
    AutoIncidentRule,
    TicketArrived,
    WatchedTicket,
    incident_watch_id,
)
from workflows.models import TicketState

log = logging.getLogger("escalator.incidents")

# At most this many open incidents are matched at intake (a storm has one or two).
OPEN_INCIDENTS_READ = 100
# Intake never waits longer than this for them: a ticket is filed unlinked rather than late.
LOAD_TIMEOUT_SECONDS = 3.0


@dataclass
class OpenIncidents:
    """The open incidents of one task queue, as of `loaded_at` (monotonic seconds)."""

    incidents: list[IncidentState] = field(default_factory=list)
    loaded_at: float = float("-inf")


_CACHE: dict[str, OpenIncidents] = {}
_LOCKS: dict[str, asyncio.Lock] = {}


def forget(task_queue: str) -> None:
    """This process opened, changed or resolved an incident: read them again at the next intake
    (what was known stays, for an intake that cannot read them now)."""
    cached = _CACHE.get(task_queue)
    if cached is not None:
        cached.loaded_at = float("-inf")


async def _load(client: Client, task_queue: str) -> list[IncidentState]:
    query = (
        f"WorkflowType = 'IncidentWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}'"
    )
    ids: list[str] = []
    async for execution in client.list_workflows(query, limit=OPEN_INCIDENTS_READ):
        if execution.id not in ids:
            ids.append(execution.id)
    states = await asyncio.gather(
        *(
            client.get_workflow_handle_for(IncidentWorkflow.run, each).query(IncidentWorkflow.state)
            for each in ids
        ),
        return_exceptions=True,
    )
    found = [state for state in states if isinstance(state, IncidentState)]
    return sorted(found, key=lambda state: state.opened_at)


async def incident_for(
    *,
    client: Client,
    task_queue: str,
    ttl_seconds: float,
    customer_id: str,
    product: Product,
    severity: Severity,
    received_at: datetime,
) -> str | None:
    """The oldest open incident whose rule matches a ticket being filed, if any.

    Never holds intake back: if Temporal's visibility does not answer, the ticket is filed
    unlinked and the incident's sweep links it.
    """
    # One reload at a time: a storm's intakes wait for it rather than each reading them all.
    async with _LOCKS.setdefault(task_queue, asyncio.Lock()):
        cached = _CACHE.get(task_queue)
        now = time.monotonic()
        if cached is None or now - cached.loaded_at > ttl_seconds:
            try:
                async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
                    incidents = await _load(client, task_queue)
            except (RPCError, TimeoutError) as err:
                # No worker answers the incidents' queries (it is restarting), say: file on with
                # what was known, and try again after the TTL.
                log.warning("Could not read the open incidents at intake (the sweep links later): %r", err)
                incidents = cached.incidents if cached is not None else []
            cached = _CACHE[task_queue] = OpenIncidents(incidents, now)
    for incident in cached.incidents:
        if incident.matches(
            customer_id=customer_id, product=product, severity=severity, received_at=received_at
        ):
            return incident.incident_id
    return None


def auto_incident_rule(settings: Settings) -> AutoIncidentRule | None:
    """The grouping rule and what an automatic incident pins, from settings; None when off."""
    if settings.incident_auto_min_tickets == 0:
        return None
    return AutoIncidentRule(
        min_tickets=settings.incident_auto_min_tickets,
        window_seconds=settings.incident_auto_window.total_seconds(),
        sweep_seconds=settings.incident_sweep_seconds,
        batch_size=settings.incident_batch_size,
        digest_seconds=settings.incident_digest_seconds,
    )


async def count_toward_auto_incident(
    *, client: Client, task_queue: str, rule: AutoIncidentRule | None, ticket: TicketState
) -> None:
    """Signal a Sev 1-2 ticket filed unlinked to its product's watcher, starting it if need be.

    The ticket is filed whatever happens here: if Temporal refuses the signal, the ticket does
    not count toward a burst (logged), and an incident can still be opened by hand.
    """
    if rule is None or ticket.incident_id is not None or ticket.severity not in rule.severities:
        return
    arrival = TicketArrived(
        ticket=WatchedTicket(
            ticket_id=ticket.ticket_id, severity=ticket.severity, received_at=ticket.received_at
        ),
        rule=rule,
    )
    try:
        await client.start_workflow(
            IncidentWatchWorkflow.run,
            IncidentWatch(product=ticket.product),
            id=incident_watch_id(task_queue, ticket.product),
            task_queue=task_queue,
            start_signal=ARRIVED_SIGNAL,
            start_signal_args=[arrival],
            static_summary=f"Watches Sev 1-2 {ticket.product.value} tickets for a burst",
        )
    except RPCError as err:
        log.warning("Ticket %s not counted toward an automatic incident: %r", ticket.ticket_id, err)
