"""IncidentWorkflow (`incident-<id>`): the Temporal shell around a major incident (DESIGN.md §13).

It takes the incident's updates, link rules and resolution as validated updates, fans each
update out to the linked open tickets in batches from an activity (each batch's result is the
progress: delivered of total), sweeps for tickets its rules match every `sweep_seconds` while
it is open, and continues as new when its history grows long. It decides nothing about a
ticket: each ticket applies the update by its own rules (workflows/actions/incident.py).
Unsandboxed like TicketWorkflow: it reads time only from `workflow.now()`.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows import search_attributes as sa
from workflows.actions.base import RefusalKind
from workflows.incident_model import (
    AddLinkRule,
    FanOutBatch,
    FanOutResult,
    IncidentOpened,
    IncidentState,
    IncidentStatus,
    IncidentUpdateRecord,
    LinkSweep,
    PostIncidentUpdate,
    ResolveIncident,
    UpdateKind,
)

# One batch of tickets per activity; a worker that dies mid-batch is noticed within the
# heartbeat timeout, and the retry resumes from the cursor the batch heartbeated.
FAN_OUT_TIMEOUT = timedelta(minutes=10)
FAN_OUT_HEARTBEAT = timedelta(seconds=5)
FAN_OUT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ValidationError"],
)


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
        self._sweep_now = bool(self._state.rules)
        # The API starts the incident with its status; upsert only a change.
        self._published = IncidentStatus.OPEN if opened.carried_state is None else None

    @workflow.run
    async def run(self, opened: IncidentOpened) -> IncidentState:
        state = self._state
        while True:
            self._changed = False
            self._publish()
            pending = state.pending()
            if pending is not None:
                await self._fan_out(pending, opened.batch_size)
                continue
            if state.status == IncidentStatus.RESOLVED:
                break
            if self._sweep_now and state.rules:
                await self._sweep()
                continue
            if workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished():
                workflow.continue_as_new(opened.model_copy(update={"carried_state": state}))
            await self._wait(opened.sweep_seconds)
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    async def _wait(self, sweep_seconds: int) -> None:
        """Until a request changes the incident, or (with rules) the next sweep is due."""
        if not self._state.rules:
            await workflow.wait_condition(lambda: self._changed)
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._changed,
                timeout=timedelta(seconds=sweep_seconds),
                timeout_summary=f"sweep for matching tickets every {sweep_seconds} s",
            )
            return
        self._sweep_now = True

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

    async def _sweep(self) -> None:
        """Link what the rules match that the read model shows unlinked (intake links most)."""
        self._sweep_now = False
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

    @workflow.update(name="add-rule")
    def add_rule(self, request: AddLinkRule) -> IncidentState:
        self._state.rules.append(request.rule)
        self._sweep_now = self._changed = True
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
        record = self._state.post(UpdateKind.RESOLUTION, request.resolution, request.actor, workflow.now())
        self._changed = True
        return record

    @resolve.validator
    def _validate_resolve(self, request: ResolveIncident) -> None:
        if self._state.status != IncidentStatus.OPEN:
            raise _resolved()

    @workflow.query
    def state(self) -> IncidentState:
        return self._state
