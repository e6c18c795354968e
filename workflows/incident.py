"""IncidentWorkflow (`incident-<id>`): the Temporal shell around a major incident (DESIGN.md §13).

It takes the incident's updates, link rules and resolution as validated updates, fans each
update out to the linked open tickets in batches from an activity (each batch's result is the
progress: delivered of total), sweeps for tickets its rules match every `sweep_seconds` while
it is open, flushes its internal audiences' digests (titled with its title) every
`digest_seconds` while it is open, resolves its page (dedup key = its id) and sends a last
digest once resolved and fanned out, writes its row to the read model (for the uptime report)
when it opens and when it resolves, and continues as new when its history grows long. Per
window that is one timer and one activity. An automatic incident (workflows/incident_watch.py)
tells its watcher when it is resolved. Support acknowledges its page with the
`acknowledge-page` update; the loop then sends the acknowledge (`settle_incident_page`), once,
before the next fan-out batch. It decides nothing about a ticket: each ticket applies the
update by its own rules (workflows/actions/incident.py).
Unsandboxed like TicketWorkflow: it reads time only from `workflow.now()`.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows import search_attributes as sa
from workflows.actions.base import RefusalKind
from workflows.enums import PageAction
from workflows.incident_model import (
    AcknowledgeIncidentPage,
    AddLinkRule,
    FanOutBatch,
    FanOutResult,
    IncidentOpened,
    IncidentPageAcknowledged,
    IncidentRecord,
    IncidentState,
    IncidentStatus,
    IncidentUpdateRecord,
    LinkSweep,
    PostIncidentUpdate,
    ResolveIncident,
    UpdateKind,
)
from workflows.incident_notices import IncidentDigestFlush, IncidentNoticesSent, IncidentPageSettle
from workflows.incident_watch_model import RESOLVED_SIGNAL, AutoIncidentResolved

# Automatic incidents (workflows/incident_watch.py) tell their watcher when they resolve. Only
# an incident started with a watcher takes this path; the patch marks where it began.
AUTO_INCIDENT_PATCH = "incident-auto-watcher"

# One batch of tickets per activity; a worker that dies mid-batch is noticed within the
# heartbeat timeout, and the retry resumes from the cursor the batch heartbeated.
FAN_OUT_TIMEOUT = timedelta(minutes=10)
FAN_OUT_HEARTBEAT = timedelta(seconds=5)
FAN_OUT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ValidationError"],
)
# A digest or a page is one send: a flush gives up after a few tries (the next window or the
# worker's loop sends what it claimed), a page retries until the pager takes it.
NOTICE_TIMEOUT = timedelta(seconds=30)
DIGEST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
PAGE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# The incident's row in the read model (its outage, for the uptime report), written when a run
# starts and when it resolves; retried for as long as the database is away. Incidents whose
# histories predate the row take neither write; one still open when this shipped writes its
# row when it resolves (the second patch is asked only then) or continues as new.
RECORD_OPENED_PATCH = "record-incident-opened"
RECORD_RESOLVED_PATCH = "record-incident-resolved"
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ValidationError"],
)
# Issue 19: support acknowledges the incident's page (`acknowledge-page`), and the loop sends it.
PAGE_ACKNOWLEDGE_PATCH = "incident-page-acknowledge"


def _resolved() -> ApplicationError:
    return ApplicationError(
        "The incident is resolved; open a new incident instead.",
        type=RefusalKind.CONFLICT.value,
        non_retryable=True,
    )


@workflow.defn(name="IncidentWorkflow", sandboxed=False)
class IncidentWorkflow:
    """A major incident's life: open, its updates fanned out, resolved."""

    @workflow.init
    def __init__(self, opened: IncidentOpened) -> None:
        self._state = opened.carried_state or IncidentState.opened(opened)
        self._changed = False
        # When the next sweep (with rules) and the next digest flush are due: set by `run`.
        self._next_sweep: datetime | None = None
        self._next_digest = opened.opened_at
        # The API starts the incident with its status; upsert only a change.
        self._published = IncidentStatus.OPEN if opened.carried_state is None else None
        # The status this run last wrote to the read model's row.
        self._recorded: IncidentStatus | None = None
        # An automatic incident tells its watcher once that it is resolved (it never continues
        # as new once resolved, so a new run has not told it yet).
        self._watcher_told = False

    @workflow.run
    async def run(self, opened: IncidentOpened) -> IncidentState:
        state = self._state
        window = timedelta(seconds=opened.digest_seconds)
        self._next_digest = workflow.now() + window
        if state.rules:
            self._next_sweep = workflow.now()
        while True:
            self._changed = False
            self._publish()
            await self._record()
            if state.status == IncidentStatus.RESOLVED and not self._watcher_told:
                self._watcher_told = True
                await self._tell_watcher(opened)
            if await self._acknowledge_page_if_due():
                continue
            pending = state.pending()
            if pending is not None:
                await self._fan_out(pending, opened.batch_size)
                continue
            if state.status == IncidentStatus.RESOLVED:
                break
            if state.rules and self._next_sweep is not None and workflow.now() >= self._next_sweep:
                await self._sweep()
                self._next_sweep = workflow.now() + timedelta(seconds=opened.sweep_seconds)
                continue
            if workflow.now() >= self._next_digest:
                await self._flush_digests()
                self._next_digest = workflow.now() + window
                continue
            if workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished():
                workflow.continue_as_new(opened.model_copy(update={"carried_state": state}))
            await self._wait()
        self._publish()
        # Resolved and fanned out: the page resolves with the incident, and what its tickets'
        # notices still hold goes out in a last digest.
        await self._settle_page(PageAction.RESOLVE)
        await self._flush_digests()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    async def _wait(self) -> None:
        """Until a request changes the incident, the next digest is due, or (with rules) the
        next sweep."""
        due = min(d for d in (self._next_digest, self._next_sweep if self._state.rules else None) if d)
        what = "sweep for matching tickets" if due == self._next_sweep else "flush the incident's digests"
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._changed,
                timeout=max(due - workflow.now(), timedelta(milliseconds=1)),
                timeout_summary=f"{what} at {due:%H:%M:%S}",
            )

    async def _record(self) -> None:
        """The incident's row, once per run while open and once resolved (before the fan-out of
        its resolution: the uptime report has its end at once)."""
        state = self._state
        if self._recorded == state.status:
            return
        self._recorded = state.status
        patch = RECORD_OPENED_PATCH if state.status == IncidentStatus.OPEN else RECORD_RESOLVED_PATCH
        if not workflow.patched(patch):
            return
        await workflow.execute_activity(
            "record_incident",
            IncidentRecord.of(state),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record {state.incident_id} {state.status.value} in the read model",
        )

    async def _tell_watcher(self, opened: IncidentOpened) -> None:
        """An automatic incident, resolved: its watcher may open the next one for a new burst
        at once, not when the resolution has fanned out. A watcher that is gone (terminated by
        hand) has nothing to forget."""
        if opened.watcher_id is None or not workflow.patched(AUTO_INCIDENT_PATCH):
            return
        with contextlib.suppress(FailureError):
            await workflow.get_external_workflow_handle(opened.watcher_id).signal(
                RESOLVED_SIGNAL, AutoIncidentResolved(incident_id=self._state.incident_id)
            )

    async def _flush_digests(self) -> None:
        """This window's digests of the incident, named by its title; the activity counts its
        open and linked tickets from the read model. A chat that stays down does not hold the
        incident up: the claimed digest waits for the next flush or the worker's loop."""
        state = self._state
        with contextlib.suppress(ActivityError):
            await workflow.execute_activity(
                "flush_incident_digests",
                IncidentDigestFlush(incident_id=state.incident_id, title=state.title),
                result_type=IncidentNoticesSent,
                start_to_close_timeout=NOTICE_TIMEOUT,
                retry_policy=DIGEST_RETRY,
                summary=f"digests of {state.incident_id}",
            )

    async def _settle_page(self, action: PageAction) -> None:
        """The incident's page (dedup key = its id), retried until the pager takes it."""
        await workflow.execute_activity(
            "settle_incident_page",
            IncidentPageSettle(incident_id=self._state.incident_id, action=action),
            result_type=IncidentNoticesSent,
            start_to_close_timeout=NOTICE_TIMEOUT,
            retry_policy=PAGE_RETRY,
            summary=f"{action.value} the page of {self._state.incident_id}",
        )

    async def _acknowledge_page_if_due(self) -> bool:
        """Send the page's acknowledge once support has acknowledged it: first thing in the loop
        and between fan-out batches, so on-call stops being paged now, not after 10,000 comments."""
        if self._state.page_acknowledge_due() and workflow.patched(PAGE_ACKNOWLEDGE_PATCH):
            await self._settle_page(PageAction.ACKNOWLEDGE)
            self._state.page_acknowledge_sent = True
            return True
        return False

    async def _fan_out(self, record: IncidentUpdateRecord, batch_size: int) -> None:
        """One batch per activity, in ticket-id order, until no linked open ticket is left."""
        while not record.done:
            batch = FanOutBatch(
                incident_id=self._state.incident_id,
                update_id=record.update_id,
                kind=record.kind,
                message=record.message,
                actor=record.by,
                posted_at=record.at,
                after=record.cursor,
                batch_size=batch_size,
                count_total=record.total is None,
            )
            result = await workflow.execute_activity(
                "fan_out_incident_update",
                batch,
                result_type=FanOutResult,
                start_to_close_timeout=FAN_OUT_TIMEOUT,
                heartbeat_timeout=FAN_OUT_HEARTBEAT,
                retry_policy=FAN_OUT_RETRY,
                summary=f"{record.update_id}: tickets after {record.cursor or 'the first'}",
            )
            if result.total is not None:
                record.total = result.total
            record.delivered += result.delivered
            record.skipped += result.skipped
            record.cursor = result.cursor
            if result.cursor is None:
                record.done = True
                # Tickets linked while it ran (new intake) got it too: the total counts them.
                record.total = max(record.total or 0, record.delivered + record.skipped)
            workflow.set_current_details(self._state.progress())
            await self._acknowledge_page_if_due()

    async def _sweep(self) -> None:
        """Link what the rules match that the read model shows unlinked (intake links most)."""
        state = self._state
        linked = await workflow.execute_activity(
            "link_incident_tickets",
            LinkSweep(
                incident_id=state.incident_id,
                rules=state.rules,
                customer_ids=state.customer_ids,
                actor=state.opened_by,
            ),
            result_type=int,
            start_to_close_timeout=FAN_OUT_TIMEOUT,
            heartbeat_timeout=FAN_OUT_HEARTBEAT,
            retry_policy=FAN_OUT_RETRY,
            summary=f"link tickets matching {len(state.rules)} rule(s)",
        )
        state.linked_by_rule += linked
        state.last_sweep_at = workflow.now()

    def _publish(self) -> None:
        state = self._state
        if self._published != state.status:
            self._published = state.status
            workflow.upsert_search_attributes([sa.INCIDENT_STATUS.value_set(state.status.value)])
        workflow.set_current_details(state.progress())

    # --- requests: validated first, so a refusal leaves no trace in history ------------------

    @workflow.update(name="post-update")
    def post_update(self, request: PostIncidentUpdate) -> IncidentUpdateRecord:
        record = self._state.post(UpdateKind.UPDATE, request.message, request.actor, workflow.now())
        self._changed = True
        return record

    @post_update.validator
    def _validate_post_update(self, request: PostIncidentUpdate) -> None:
        if self._state.status != IncidentStatus.OPEN:
            raise _resolved()

    @workflow.update(name="acknowledge-page")
    def acknowledge_page(self, request: AcknowledgeIncidentPage) -> IncidentPageAcknowledged:
        """Acknowledge the incident's page; the loop sends it. A second acknowledge sends nothing."""
        state = self._state
        acknowledged = state.acknowledge_page(request.actor, workflow.now())
        self._changed = self._changed or acknowledged
        assert state.page_acknowledged_at is not None and state.page_acknowledged_by is not None
        return IncidentPageAcknowledged(
            acknowledged_at=state.page_acknowledged_at,
            acknowledged_by=state.page_acknowledged_by,
            already=not acknowledged,
        )

    @acknowledge_page.validator
    def _validate_acknowledge_page(self, request: AcknowledgeIncidentPage) -> None:
        if self._state.status != IncidentStatus.OPEN:
            raise _resolved()

    @workflow.update(name="add-rule")
    def add_rule(self, request: AddLinkRule) -> IncidentState:
        self._state.rules.append(request.rule)
        self._next_sweep = workflow.now()
        self._changed = True
        return self._state

    @add_rule.validator
    def _validate_add_rule(self, request: AddLinkRule) -> None:
        if self._state.status != IncidentStatus.OPEN:
            raise _resolved()
        if request.rule.product not in self._state.products:
            products = ", ".join(p.value for p in self._state.products)
            raise ApplicationError(
                f"product: the incident is about {products}; a rule links tickets of those only.",
                type=RefusalKind.INVALID.value,
                non_retryable=True,
            )

    @workflow.update(name="resolve")
    def resolve(self, request: ResolveIncident) -> IncidentUpdateRecord:
        record = self._state.post(
            UpdateKind.RESOLUTION,
            request.resolution,
            request.actor,
            workflow.now(),
            outage_ended_at=request.outage_ended_at,
        )
        self._changed = True
        return record

    @resolve.validator
    def _validate_resolve(self, request: ResolveIncident) -> None:
        if self._state.status != IncidentStatus.OPEN:
            raise _resolved()
        problem = request.outage_problem(self._state, workflow.now())
        if problem is not None:
            raise ApplicationError(
                str(problem), problem.rule, type=RefusalKind.INVALID.value, non_retryable=True
            )

    @workflow.query
    def state(self) -> IncidentState:
        return self._state
