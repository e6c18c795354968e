"""The activities of a major incident (DESIGN.md §13): its fan-out and its sweep.

`fan_out_incident_update` applies one update (or the resolution) to one batch of the incident's
linked open tickets, read from the read model in ticket-id order, as the ticket's own
`incident-update` (or `incident-resolve`) workflow update with the update's id. It heartbeats
its cursor and counts after every slice, so a retried activity (its worker died) resumes where
the last heartbeat left it; a ticket done twice is no harm: it applies an update id once, and
answers the second time with the refusal `incident_update_applied`, counted as delivered.

`link_incident_tickets` links the open tickets a rule matches that the read model shows
unlinked: what intake did not link (it was filed before the rule, or the cache missed it).

`record_incident` writes the incident's own row (its products and its outage, for the uptime
report): an upsert keyed by its id, which never turns a resolved row back to open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from store import incidents as read_model
from workflows.actions.base import ActionModel
from workflows.actions.incident import APPLIED, IncidentResolve, IncidentUpdate, LinkIncident
from workflows.incident_model import FanOutBatch, FanOutResult, IncidentRecord, LinkSweep, UpdateKind
from workflows.models import workflow_id_for

# Tickets being updated at once: enough to keep the server busy, few enough not to swamp it.
SLICE = 50
SWEEP_PAGE = 500


@dataclass
class Progress:
    """Where a batch is: resumed from the last heartbeat of an earlier attempt, if any."""

    cursor: str | None
    delivered: int = 0
    skipped: int = 0
    total: int | None = None

    @classmethod
    def resumed(cls, start: str | None) -> Progress:
        details: Sequence[Any] = activity.info().heartbeat_details if activity.in_activity() else ()
        if details:
            saved = details[0]
            return cls(saved["cursor"], saved["delivered"], saved["skipped"], saved.get("total"))
        return cls(start)

    def beat(self) -> None:
        if activity.in_activity():
            activity.heartbeat(
                {
                    "cursor": self.cursor,
                    "delivered": self.delivered,
                    "skipped": self.skipped,
                    "total": self.total,
                }
            )


class IncidentActivities:
    def __init__(self, client: Client, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._client = client
        self._sessionmaker = sessionmaker

    async def _apply(self, ticket_id: str, update: str, action: ActionModel) -> bool | None:
        """True once the ticket has the action (now or before), False if it does not apply to it
        (resolved, closed, unlinked meanwhile), None on another refusal. Any other failure raises:
        the activity is retried, from its last heartbeat."""
        handle = self._client.get_workflow_handle(workflow_id_for(ticket_id))
        try:
            await handle.execute_update(update, action)
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            if isinstance(cause, ApplicationError) and cause.details and cause.details[0] == APPLIED:
                return True
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                return False
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # the ticket's workflow has ended: closed
                return False
            raise
        return True

    @activity.defn(name="fan_out_incident_update")
    async def fan_out_incident_update(self, batch: FanOutBatch) -> FanOutResult:
        progress = Progress.resumed(batch.after)
        if batch.count_total and progress.total is None:
            async with self._sessionmaker() as session:
                progress.total = await read_model.count_linked_open(
                    session=session, incident_id=batch.incident_id
                )
        async with self._sessionmaker() as session:
            page = await read_model.linked_open_page(
                session=session, incident_id=batch.incident_id, after=progress.cursor, limit=batch.batch_size
            )
        action: ActionModel
        if batch.kind == UpdateKind.RESOLUTION:
            update = "incident-resolve"
            action = IncidentResolve(
                actor=batch.actor,
                incident_id=batch.incident_id,
                update_id=batch.update_id,
                resolution=batch.message,
                posted_at=batch.posted_at,
            )
        else:
            update = "incident-update"
            action = IncidentUpdate(
                actor=batch.actor,
                incident_id=batch.incident_id,
                update_id=batch.update_id,
                message=batch.message,
                posted_at=batch.posted_at,
            )
        await _in_slices(page, lambda ticket_id: self._apply(ticket_id, update, action), progress)
        # A short page is the last: nothing linked and open is left after it.
        cursor = page[-1] if len(page) == batch.batch_size else None
        return FanOutResult(
            delivered=progress.delivered, skipped=progress.skipped, cursor=cursor, total=progress.total
        )

    @activity.defn(name="link_incident_tickets")
    async def link_incident_tickets(self, sweep: LinkSweep) -> int:
        progress = Progress.resumed(None)
        action = LinkIncident(actor=sweep.actor, incident_id=sweep.incident_id)
        while True:
            async with self._sessionmaker() as session:
                page = await read_model.unlinked_matching_page(
                    session=session,
                    rules=sweep.rules,
                    customer_ids=sweep.customer_ids,
                    after=progress.cursor,
                    limit=SWEEP_PAGE,
                )
            if not page:
                return progress.delivered
            await _in_slices(
                page, lambda ticket_id: self._apply(ticket_id, "link-incident", action), progress
            )


async def _in_slices(
    page: list[str], apply: Callable[[str], Awaitable[bool | None]], progress: Progress
) -> None:
    """Apply to each ticket of the page, SLICE in flight at a time: as one ticket answers, the
    next starts, so a slow ticket holds back only its own place, not a slice. The heartbeat's
    cursor is the last ticket of the done prefix (every ticket before it answered), beaten each
    time that prefix grows by another SLICE and at the end; a retry resumes after it, and the
    tickets it does again apply the update id once."""
    limit = asyncio.Semaphore(SLICE)

    async def one(ticket_id: str) -> bool | None:
        async with limit:
            return await apply(ticket_id)

    tasks = [asyncio.create_task(one(ticket_id)) for ticket_id in page]
    try:
        for done, (ticket_id, task) in enumerate(zip(page, tasks, strict=True), start=1):
            outcome = await task
            if outcome:
                progress.delivered += 1
            else:
                progress.skipped += 1
            progress.cursor = ticket_id
            if done % SLICE == 0 or done == len(page):
                progress.beat()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class IncidentReadModel:
    """The incident's row, written by its workflow; only the read model, so it runs wherever the
    ticket activities run (worker/worker.py `ticket_activities`)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn(name="record_incident")
    async def record_incident(self, record: IncidentRecord) -> None:
        async with self._sessionmaker.begin() as session:
            await read_model.record_incident(session=session, record=record)


def incident_activities(
    client: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> list[Callable[..., Any]]:
    activities = IncidentActivities(client, sessionmaker)
    return [activities.fan_out_incident_update, activities.link_incident_tickets]
