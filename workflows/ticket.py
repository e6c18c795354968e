"""TicketWorkflow: the thin Temporal shell around the pure ticket machine.

It does four things: feeds actions and timer firings into the machine, runs the effects as
activities, sleeps until the next deadline, and answers queries from the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.machine as machine
    import workflows.search_attributes as sa
    from workflows.models import (
        Acknowledge,
        ChangeSeverity,
        Close,
        Comment,
        Escalate,
        Handback,
        Handoff,
        Notification,
        Reopen,
        Resolve,
        Resume,
        TicketAction,
        TicketOpened,
        TicketState,
        TicketStatus,
        TicketSync,
        WaitOnCustomer,
    )

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Writes must land eventually; retry for as long as the database is away.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ValidationError"],
)


def refusal_error(refusal: machine.Refusal) -> ApplicationError:
    return ApplicationError(refusal.message, type=refusal.kind.value, non_retryable=True)


@workflow.defn(name="TicketWorkflow")
class TicketWorkflow:
    @workflow.init
    def __init__(self, opened: TicketOpened) -> None:
        if opened.carried_state is not None:
            self._state = opened.carried_state
            self._recorded_seq = opened.carried_state.next_seq - 1
            self._outbox: list[Notification] = []
        else:
            outcome = machine.open_ticket(opened)
            self._state = outcome.state
            self._recorded_seq = 0
            self._outbox = outcome.notifications
        self._opened = opened
        self._changed = False
        self._published: dict[str, Any] = {}

    @workflow.run
    async def run(self, opened: TicketOpened) -> TicketState:
        while True:
            # Cleared before the work, so a change that lands while we flush wakes us again.
            self._changed = False
            outcome = machine.advance(self._state, workflow.now())
            self._state = outcome.state
            self._outbox.extend(outcome.notifications)
            await self._flush()
            if self._state.status == TicketStatus.CLOSED:
                break
            if workflow.info().is_continue_as_new_suggested() and self._idle():
                workflow.continue_as_new(self._opened.model_copy(update={"carried_state": self._state}))
            await self._sleep_until_next_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return self._state

    def _idle(self) -> bool:
        """Nothing to record, send or answer: safe to hand over to a new run."""
        return (
            not self._changed
            and not self._outbox
            and self._recorded_seq == self._state.next_seq - 1
            and workflow.all_handlers_finished()
        )

    async def _sleep_until_next_deadline(self) -> None:
        wakeup = machine.next_wakeup(self._state)
        if wakeup is None:
            await workflow.wait_condition(lambda: self._changed)
            return
        # Whole milliseconds, rounded up, so the timer never fires a hair before the deadline.
        delay = (wakeup.at - workflow.now()).total_seconds()
        timeout = timedelta(milliseconds=max(1, math.ceil(delay * 1000)))
        # Either a change woke us, or the deadline came: the loop handles both the same way.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._changed, timeout=timeout, timeout_summary=wakeup.summary
            )

    # --- effects --------------------------------------------------------------------------

    def _take(self, outcome: machine.Outcome) -> None:
        self._state = outcome.state
        self._outbox.extend(outcome.notifications)
        self._changed = True

    async def _flush(self) -> None:
        """Record new events, send notifications, publish search attributes."""
        while self._recorded_seq < self._state.next_seq - 1 or self._outbox:
            state = self._state
            events = [e for e in state.events if e.seq > self._recorded_seq]
            if events:
                kinds = ", ".join(e.kind for e in events[:4]) + (" ..." if len(events) > 4 else "")
                await workflow.execute_activity(
                    "sync_ticket",
                    TicketSync(row=state.row(workflow.now()), events=events),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                    summary=f"record {len(events)} event(s): {kinds}",
                )
                self._recorded_seq = events[-1].seq
            outbox, self._outbox = self._outbox, []
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        "notify",
                        note,
                        start_to_close_timeout=ACTIVITY_TIMEOUT,
                        retry_policy=ACTIVITY_RETRY,
                        summary=f"{'page' if note.page else 'notify'} {note.audience.value}: {note.subject}"[
                            :200
                        ],
                    )
                    for note in outbox
                )
            )
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        updates = []
        for pair in sa.for_ticket(self._state):
            if self._published.get(pair.key.name) != pair.value:
                self._published[pair.key.name] = pair.value
                updates.append(pair.key.value_set(pair.value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _act(self, action: TicketAction) -> TicketState:
        try:
            self._take(machine.apply(self._state, action, workflow.now()))
        except machine.Refusal as refusal:
            raise refusal_error(refusal) from None
        return self._state

    def _check(self, action: TicketAction) -> None:
        try:
            machine.validate(self._state, action, workflow.now())
        except machine.Refusal as refusal:
            raise refusal_error(refusal) from None

    def _signalled(self, action: TicketAction) -> None:
        # A signal cannot be refused back to its sender: log it and leave the ticket as is.
        try:
            self._take(machine.apply(self._state, action, workflow.now()))
        except machine.Refusal as refusal:
            workflow.logger.warning("Ignored %s signal: %s", type(action).__name__, refusal.message)

    # --- queries --------------------------------------------------------------------------

    @workflow.query
    def state(self) -> TicketState:
        return self._state

    # --- updates: validated, so a refused action leaves no trace in history ---------------

    @workflow.update
    def acknowledge(self, action: Acknowledge) -> TicketState:
        return self._act(action)

    @acknowledge.validator
    def _validate_acknowledge(self, action: Acknowledge) -> None:
        self._check(action)

    @workflow.update
    def comment(self, action: Comment) -> TicketState:
        return self._act(action)

    @comment.validator
    def _validate_comment(self, action: Comment) -> None:
        self._check(action)

    @workflow.update
    def escalate(self, action: Escalate) -> TicketState:
        return self._act(action)

    @escalate.validator
    def _validate_escalate(self, action: Escalate) -> None:
        self._check(action)

    @workflow.update
    def handoff(self, action: Handoff) -> TicketState:
        return self._act(action)

    @handoff.validator
    def _validate_handoff(self, action: Handoff) -> None:
        self._check(action)

    @workflow.update
    def handback(self, action: Handback) -> TicketState:
        return self._act(action)

    @handback.validator
    def _validate_handback(self, action: Handback) -> None:
        self._check(action)

    @workflow.update(name="change-severity")
    def change_severity(self, action: ChangeSeverity) -> TicketState:
        return self._act(action)

    @change_severity.validator
    def _validate_change_severity(self, action: ChangeSeverity) -> None:
        self._check(action)

    @workflow.update(name="wait-on-customer")
    def wait_on_customer(self, action: WaitOnCustomer) -> TicketState:
        return self._act(action)

    @wait_on_customer.validator
    def _validate_wait_on_customer(self, action: WaitOnCustomer) -> None:
        self._check(action)

    @workflow.update
    def resume(self, action: Resume) -> TicketState:
        return self._act(action)

    @resume.validator
    def _validate_resume(self, action: Resume) -> None:
        self._check(action)

    @workflow.update
    def resolve(self, action: Resolve) -> TicketState:
        return self._act(action)

    @resolve.validator
    def _validate_resolve(self, action: Resolve) -> None:
        self._check(action)

    @workflow.update
    def reopen(self, action: Reopen) -> TicketState:
        return self._act(action)

    @reopen.validator
    def _validate_reopen(self, action: Reopen) -> None:
        self._check(action)

    @workflow.update
    def close(self, action: Close) -> TicketState:
        return self._act(action)

    @close.validator
    def _validate_close(self, action: Close) -> None:
        self._check(action)

    # --- signals: the same actions for systems that talk to Temporal directly -------------

    @workflow.signal(name="acknowledge-signal")
    def acknowledge_signal(self, action: Acknowledge) -> None:
        self._signalled(action)

    @workflow.signal(name="comment-signal")
    def comment_signal(self, action: Comment) -> None:
        self._signalled(action)

    @workflow.signal(name="escalate-signal")
    def escalate_signal(self, action: Escalate) -> None:
        self._signalled(action)

    @workflow.signal(name="handoff-signal")
    def handoff_signal(self, action: Handoff) -> None:
        self._signalled(action)

    @workflow.signal(name="handback-signal")
    def handback_signal(self, action: Handback) -> None:
        self._signalled(action)

    @workflow.signal(name="change-severity-signal")
    def change_severity_signal(self, action: ChangeSeverity) -> None:
        self._signalled(action)

    @workflow.signal(name="wait-on-customer-signal")
    def wait_on_customer_signal(self, action: WaitOnCustomer) -> None:
        self._signalled(action)

    @workflow.signal(name="resume-signal")
    def resume_signal(self, action: Resume) -> None:
        self._signalled(action)

    @workflow.signal(name="resolve-signal")
    def resolve_signal(self, action: Resolve) -> None:
        self._signalled(action)

    @workflow.signal(name="reopen-signal")
    def reopen_signal(self, action: Reopen) -> None:
        self._signalled(action)

    @workflow.signal(name="close-signal")
    def close_signal(self, action: Close) -> None:
        self._signalled(action)
