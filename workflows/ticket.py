"""TicketWorkflow: the thin Temporal shell around the pure ticket machine.

It does four things: feeds actions and timer firings into the machine, runs the effects as
activities (what each `record_ticket` carries is the change tracker's, workflows/changes.py),
sleeps until the next deadline, and answers queries from the state. Its update
and signal handlers are generated from the machine's table of actions (workflows/actions/):
one definition per action makes its `<update>` update (with its validator) and its
`<update>-signal` signal here, and its route in the API.

It runs outside the workflow sandbox (`sandboxed=False`). The sandbox re-imported this module
for every workflow instance (each start, and each replay after a cache eviction), compiling it
from source under `PYTHONDONTWRITEBYTECODE=1`, and it guarded nothing here: the machine and
every module the workflow calls were already passed through, where the sandbox stops neither
the clock nor randomness. What keeps the workflow deterministic is that it reads time only
from `workflow.now()` and knows nothing the history does not (tests/test_workflow_determinism.py
checks the code for it), and the committed histories that replay under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import machine
from workflows import search_attributes as sa
from workflows.actions.base import ACTIONS, ActionDefinition, ActionModel, Refusal
from workflows.changes import ChangeTracker
from workflows.clocks import CLOCK_NAMES
from workflows.enums import TicketStatus
from workflows.models import (
    AppliedAction,
    Delivery,
    DeliveryOutcome,
    Notification,
    StepOutcome,
    TicketOpened,
    TicketRecord,
    TicketState,
    TicketStep,
    TicketView,
)
from workflows.terms import PinnedHolidays
from workflows.timeline import headline

TicketWorkflowT = TypeVar("TicketWorkflowT")

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Writes must land eventually; retry for as long as the database is away.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ValidationError", "UnknownCountry"],
)


# Notices go out on their channels (the policy document's `routes`), each its own activity, so that a sink
# that is down holds back nothing else: not the ticket's timers, not its other notices, not the
# read model. Temporal retries a failed send with backoff for up to DELIVERY_DEADLINE.
DELIVERY_PATCH = "deliver-notifications"
DELIVERY_TIMEOUT = timedelta(seconds=30)
DELIVERY_DEADLINE = timedelta(days=3)
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
# How long a closed ticket waits for its last notices before it hands the rest to a
# TicketDeliveries workflow of their own: a sink down for hours never keeps a ticket open.
CLOSE_GRACE = timedelta(minutes=1)

# A record the read model refused on its data (activities/read_model.py) is set aside there,
# never retried; the ticket counts it and carries on (issue 17 §1).
RECORD_QUARANTINED = "RecordQuarantined"
QUARANTINE_PATCH = "quarantine-refused-records"
# Records carry what-if's inputs (issue 20): the opening with the first record, then each
# action applied, with its body and time (store/whatif_inputs.py).
WHATIF_INPUTS_PATCH = "record-whatif-inputs"
# One activity per step (issue 18): a step's notices are sent, then its record written, by one
# `notify_and_record` (activities/step.py) rather than an activity each. Tickets started before
# it run the separate activities to the end of their run.
STEP_PATCH = "notify-and-record"
# The step's sends (each within the sinks' timeout), then its record (within record_ticket's).
STEP_TIMEOUT = timedelta(seconds=60)
# Signals meet the checks that need the time (outage times never in the future) from here on;
# signals in older histories replay as they were taken.
TIMED_SIGNAL_CHECKS_PATCH = "timed-signal-checks"


def refusal_error(refusal: Refusal) -> ApplicationError:
    details = (refusal.rule,) if refusal.rule else ()
    return ApplicationError(refusal.message, *details, type=refusal.kind.value, non_retryable=True)


def _record_summary(record: TicketRecord) -> str:
    """'record opened, critical_incident; notify support_l2, leadership_l4, page on_call'."""
    kinds = [event.kind.value for event in record.events]
    said = [f"{'page ' if n.page else ''}{n.audience.value}" for n in record.notifications]
    parts = [f"record {', '.join(kinds)}" if kinds else "record the ticket row"]
    if said:
        parts.append(f"notify {', '.join(said)}")
    summary = "; ".join(parts)
    return summary if len(summary) <= 200 else summary[:197] + "..."


def delivery_for(state: TicketState, notification: Notification) -> Delivery:
    """A notice with what its message shows: the ticket's headline and its nearest deadline,
    a binding one before an indicative one (DESIGN.md §4)."""
    live = [clock for clock in state.clocks if clock.is_live]
    nearest = min(live, key=lambda clock: (not clock.target.binding, clock.due_at)) if live else None
    return Delivery(
        notification=notification,
        customer_id=state.customer_id,
        partner_id=state.entitlement.partner_id,
        headline=headline(state),
        severity=int(state.severity),
        level=state.level,
        tier=state.tier.label,
        clock=CLOCK_NAMES[nearest.kind] if nearest else None,
        due_at=nearest.due_at if nearest else None,
        indicative=nearest is not None and not nearest.target.binding,
    )


async def deliver(delivery: Delivery) -> DeliveryOutcome:
    """Send one notice, retried by Temporal until the sink takes it or the deadline passes.

    A send that never succeeds is an outcome too (with its last error), never a failure of
    the ticket.
    """
    notification = delivery.notification
    assert notification.channel is not None
    try:
        return await workflow.execute_activity(
            "deliver_notification",
            delivery,
            result_type=DeliveryOutcome,
            start_to_close_timeout=DELIVERY_TIMEOUT,
            schedule_to_close_timeout=DELIVERY_DEADLINE,
            retry_policy=DELIVERY_RETRY,
            # Handing a notice on at close waits until its retries here have stopped.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"{notification.channel.value} to {notification.audience.value}"
            + (f" ({notification.page_action.value})" if notification.page_action else ""),
        )
    except ActivityError as failed:
        cause = failed.cause or failed
        workflow.logger.warning("Gave up delivering %s: %s", notification.key, cause)
        return DeliveryOutcome(
            ticket_id=notification.ticket_id,
            key=notification.key,
            channel=notification.channel,
            sink="none",
            attempts=0,
            last_error=str(cause),
            recorded=False,
        )


@workflow.defn(name="TicketDeliveries", sandboxed=False)
class TicketDeliveries:
    """The notices a closed ticket had not yet delivered, carried on after it closed."""

    @workflow.run
    async def run(self, deliveries: list[Delivery]) -> list[DeliveryOutcome]:
        outcomes = list(await asyncio.gather(*(deliver(each) for each in deliveries)))
        unrecorded = [outcome for outcome in outcomes if not outcome.recorded]
        if unrecorded:
            await workflow.execute_activity(
                "record_deliveries",
                unrecorded,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=f"record {len(unrecorded)} deliveries",
            )
        return outcomes


# --- Updates and signals, generated from the table of actions -----------------------------------


def _method(fn: Callable[..., Any], name: str, action: type[ActionModel], returns: Any) -> None:
    # The SDK reads the payload types from the annotations.
    fn.__name__ = name
    fn.__qualname__ = f"TicketWorkflow.{name}"
    fn.__annotations__ = {"action": action, "return": returns}


def _update(definition: ActionDefinition[Any]) -> Callable[..., Any]:
    """`<update>`: validated, so a refused action leaves no trace in history."""

    def update(self: TicketWorkflow, action: ActionModel) -> TicketView:
        return self._act(action)

    def validate(self: TicketWorkflow, action: ActionModel) -> None:
        self._check(action)

    _method(update, definition.method, definition.model, TicketView)
    _method(validate, f"_validate_{definition.method}", definition.model, None)
    handler = workflow.update(name=definition.update, description=definition.summary)(update)
    handler.validator(validate)
    return handler


def _signal(definition: ActionDefinition[Any]) -> Callable[..., Any]:
    """`<update>-signal`: the same action for systems that talk to Temporal directly."""

    def signal(self: TicketWorkflow, action: ActionModel) -> None:
        self._signalled(action)

    _method(signal, f"{definition.method}_signal", definition.model, None)
    return workflow.signal(name=definition.signal, description=definition.summary)(signal)


def with_action_handlers(cls: type[TicketWorkflowT]) -> type[TicketWorkflowT]:
    """Give the workflow an update (with its validator) and a signal per action definition."""
    for definition in ACTIONS:
        setattr(cls, definition.method, _update(definition))
        setattr(cls, f"{definition.method}_signal", _signal(definition))
    return cls


def follow_registry(cls: type[Any]) -> None:
    """Keep the workflow's handlers in step with the registry: an action registered after the
    class was made (a test's own) gets its update and signal, on the class and in its
    definition, which each new workflow run copies its handlers from."""
    defn = workflow._Definition.must_from_class(cls)
    # The SDK types these as read-only; each new run copies them (temporalio's instance init).
    updates = cast(dict[str | None, Any], defn.updates)
    signals = cast(dict[str | None, Any], defn.signals)

    def follow(definition: ActionDefinition[Any], registered: bool) -> None:
        if not registered:
            updates.pop(definition.update, None)
            signals.pop(definition.signal, None)
            for name in (definition.method, f"{definition.method}_signal"):
                if name in vars(cls):
                    delattr(cls, name)
            return
        if definition.update in updates:
            return
        update, signal = _update(definition), _signal(definition)
        setattr(cls, definition.method, update)
        setattr(cls, f"{definition.method}_signal", signal)
        updates[definition.update] = update._defn  # type: ignore[attr-defined]
        signals[definition.signal] = getattr(signal, "__temporal_signal_definition")

    ACTIONS.listen(follow)


@workflow.defn(name="TicketWorkflow", sandboxed=False)
@with_action_handlers
class TicketWorkflow:
    """A ticket's life. Its updates and signals (one per action) are added by
    `with_action_handlers`: `acknowledge`, `acknowledge_signal`, ..., `close`, `close_signal`."""

    _state: TicketState

    @workflow.init
    def __init__(self, opened: TicketOpened) -> None:
        if opened.carried_state is not None:
            self._state = opened.carried_state
            self._outbox: list[Notification] = []
        else:
            outcome = machine.open_ticket(opened)
            self._state = outcome.state
            self._outbox = outcome.notifications
        self._changed = False
        # Notices being delivered, by key, and outcomes the delivery could not record itself.
        self._sending: dict[str, tuple[Delivery, asyncio.Task[None]]] = {}
        self._unrecorded: list[DeliveryOutcome] = []
        # Notices sent but not yet in the outbox, and the record under way (if any).
        self._to_record: list[Notification] = []
        self._recorder: asyncio.Task[None] | None = None
        self._delivers = False
        # A step's notices and its record go in one activity when nothing is being recorded.
        self._steps = False
        # Set once the last notices are handed to TicketDeliveries: this run no longer awaits them.
        self._handed_off = False
        # What the read model already has, so a record carries only what changed since.
        self._changes = ChangeTracker.starting(continued=opened.carried_state is not None)
        # What-if's inputs not yet recorded: the opening (a first run's) and the actions applied.
        self._opening: TicketOpened | None = opened if opened.carried_state is None else None
        self._applied: list[AppliedAction] = []
        # The API starts a ticket with its search attributes: publish only what changes.
        started = workflow.info().typed_search_attributes
        self._published: dict[str, Any] = {
            key.name: value for key in sa.ALL_KEYS if (value := started.get(key)) is not None
        }

    @workflow.run
    async def run(self, opened: TicketOpened) -> TicketState:
        # Tickets started before notices were delivered only queued them in the outbox.
        self._delivers = workflow.patched(DELIVERY_PATCH)
        self._steps = self._delivers and workflow.patched(STEP_PATCH)
        while True:
            # Cleared before the work, so a change that lands while we flush wakes us again.
            self._changed = False
            now = workflow.now()
            self._outbox.extend(machine.advance(self._state, now, in_place=True).notifications)
            await self._pin_holidays()
            await self._flush()
            if self._state.status == TicketStatus.CLOSED:
                break
            if workflow.info().is_continue_as_new_suggested():
                await self._recorded()
            if workflow.info().is_continue_as_new_suggested() and self._idle():
                workflow.continue_as_new(opened.model_copy(update={"carried_state": self._state}))
            await self._sleep_until_next_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        await self._recorded()
        await self._finish_deliveries()
        await self._flush()
        await self._recorded()
        return self._state

    def _idle(self) -> bool:
        """Nothing to record, send or answer: safe to hand over to a new run."""
        return (
            not self._changed
            and not self._outbox
            and not self._state.events
            and not self._changes.row_stale
            and not self._sending
            and not self._unrecorded
            and not self._to_record
            and (self._recorder is None or self._recorder.done())
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

    async def _pin_holidays(self) -> None:
        """Pin more years of public holidays before any clock could count on a day without them.

        The activity's answer is in the history, so a replay pins the very same dates.
        """
        needed = machine.holidays_needed(self._state, workflow.now())
        while needed is not None:
            pinned = await workflow.execute_activity(
                "public_holidays",
                needed,
                result_type=PinnedHolidays,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=f"pin the {needed.country} public holidays of "
                f"{needed.first_year}-{needed.stop_year - 1}",
            )
            machine.pin_holidays(self._state, needed, pinned.dates, workflow.now())
            self._changes.row_changed()
            needed = machine.holidays_needed(self._state, workflow.now())

    async def _flush(self) -> None:
        """Send the new notices, record what changed, publish the search attributes.

        The notices go out at once, and the record (one `record_ticket` activity at a time)
        runs beside the ticket rather than in front of it: a database that refuses, or one
        write that cannot succeed, holds back neither the next deadline nor its page.
        Tickets started before notices were delivered recorded first, and waited for it.
        """
        if not self._delivers:
            await self._record_pending()
            self._publish_search_attributes()
            return
        notifications, self._outbox = self._outbox, []
        recording = self._recorder is not None and not self._recorder.done()
        if self._steps and not recording:
            # One activity sends these notices, then records the step with them.
            steps = self._deliveries(notifications)
        else:
            self._send(notifications)
            steps = []
        self._to_record.extend(notifications)
        if self._record_due() and not recording:
            self._recorder = asyncio.create_task(self._record_pending(steps))
        self._publish_search_attributes()

    async def _recorded(self) -> None:
        """Wait until everything so far is in the read model."""
        while self._record_due() or (self._recorder is not None and not self._recorder.done()):
            if self._recorder is not None and not self._recorder.done():
                await self._recorder
            else:
                await self._record_pending()

    def _record_due(self) -> bool:
        notices = self._to_record if self._delivers else self._outbox
        return self._changes.due(self._state, notices, self._unrecorded)

    async def _record_pending(self, deliveries: list[Delivery] | None = None) -> None:
        """Record new events and their notifications, one activity at a time, until nothing is
        left. What each record carries is the change tracker's (workflows/changes.py). The
        first record sends `deliveries` before it is written, in one step."""
        while self._record_due():
            if self._delivers:
                notifications, self._to_record = self._to_record, []
            else:
                notifications, self._outbox = self._outbox, []
            outcomes, self._unrecorded = self._unrecorded, []
            pending = self._changes.next_record(self._state, workflow.now(), notifications, outcomes)
            self._add_whatif_inputs(pending.record)
            if deliveries:
                written = await self._take_step(pending.record, deliveries)
                deliveries = None
            else:
                written = await self._write_record(pending.record)
            self._changes.settle(self._state, pending, written=written)

    def _add_whatif_inputs(self, record: TicketRecord) -> None:
        if not self._opening and not self._applied:
            return
        if not workflow.patched(WHATIF_INPUTS_PATCH):
            self._opening, self._applied = None, []
            return
        record.opened, self._opening = self._opening, None
        record.actions, self._applied = self._applied, []

    async def _write_record(self, record: TicketRecord) -> bool:
        """Run one `record_ticket`: True once written, False when the read model refused its
        data and set it aside (quarantined). A database that is away is retried, as ever."""
        try:
            await workflow.execute_activity(
                "record_ticket",
                record,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=_record_summary(record),
            )
        except ActivityError as failed:
            if not self._set_aside(failed):
                raise
            return False
        return True

    def _set_aside(self, failed: ActivityError) -> bool:
        """Whether a record failed as quarantined (counted and logged here): the ticket carries on."""
        cause = failed.cause
        if not isinstance(cause, ApplicationError) or cause.type != RECORD_QUARANTINED:
            return False
        if not workflow.patched(QUARANTINE_PATCH):
            return False
        self._state.records_quarantined += 1
        workflow.logger.error(
            "The read model refused a record of ticket %s and set it aside; the ticket carries on, "
            "its read model behind: %s",
            self._state.ticket_id,
            cause.message,
        )
        return True

    async def _take_step(self, record: TicketRecord, deliveries: list[Delivery]) -> bool:
        """Send the step's notices, then write its record, in one `notify_and_record`: True once
        written, False when quarantined. A notice it could not send goes to its own
        `deliver_notification`; a record the database could not take, to `record_ticket`."""
        try:
            outcome = await workflow.execute_activity(
                "notify_and_record",
                TicketStep(record=record, deliveries=deliveries),
                result_type=StepOutcome,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
                summary=_record_summary(record),
            )
        except ActivityError as failed:
            if not self._set_aside(failed):
                raise
            details = cast(ApplicationError, failed.cause).details
            told = StepOutcome.model_validate(details[0]) if details else StepOutcome()
            self._unrecorded.extend(self._after_step(told, deliveries))
            return False
        unrecorded = self._after_step(outcome, deliveries)
        if outcome.written:
            self._unrecorded.extend(unrecorded)
            return True
        record.deliveries.extend(unrecorded)
        return await self._write_record(record)

    def _after_step(self, outcome: StepOutcome, deliveries: list[Delivery]) -> list[DeliveryOutcome]:
        """Hand the step's unsent notices to their own retries; the deliveries still to record."""
        unsent = set(outcome.unsent)
        self._send_deliveries(
            [each.model_copy(update={"tried": 1}) for each in deliveries if each.notification.key in unsent]
        )
        return [each for each in outcome.delivered if not each.recorded]

    def _send(self, notifications: list[Notification]) -> None:
        if not self._delivers:
            return
        self._send_deliveries(self._deliveries(notifications))

    def _deliveries(self, notifications: list[Notification]) -> list[Delivery]:
        """The notices to send (those on a channel, not already on their way), as messages."""
        return [
            delivery_for(self._state, notification)
            for notification in notifications
            if notification.channel is not None and notification.key not in self._sending
        ]

    def _send_deliveries(self, deliveries: list[Delivery]) -> None:
        """Each notice in an activity of its own, retried until it goes or its deadline passes."""
        for delivery in deliveries:
            task = asyncio.create_task(self._deliver(delivery))
            self._sending[delivery.notification.key] = (delivery, task)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            outcome = await deliver(delivery)
        finally:
            self._sending.pop(delivery.notification.key, None)
        if not outcome.recorded and not self._handed_off:
            self._unrecorded.append(outcome)
            self._changed = True

    async def _finish_deliveries(self) -> None:
        """Give the last notices a moment, then hand what is left to a workflow of its own."""
        if not self._sending:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: not self._sending,
                timeout=CLOSE_GRACE,
                timeout_summary="let the last notices go out",
            )
        if not self._sending:
            return
        left = [delivery for delivery, _ in self._sending.values()]
        self._handed_off = True
        tasks = [task for _, task in self._sending.values()]
        for task in tasks:
            task.cancel()
        # Stopped for sure before they are handed on; one that still got through is not sent
        # twice: its outbox row says so, and the carrier looks there first.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sending.clear()
        await workflow.start_child_workflow(
            TicketDeliveries.run,
            left,
            id=f"{workflow.info().workflow_id}-deliveries",
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"{len(left)} notices still to deliver after the ticket closed",
        )

    def _publish_search_attributes(self) -> None:
        updates: list[Any] = []
        pairs = sa.for_ticket(self._state)
        for pair in pairs:
            if self._published.get(pair.key.name) != pair.value:
                self._published[pair.key.name] = pair.value
                updates.append(pair.key.value_set(pair.value))
        for key in sa.UNSET_WHEN_ABSENT:
            if pairs.get(key) is None and self._published.pop(key.name, None) is not None:
                updates.append(key.value_unset())
        if updates:
            workflow.upsert_search_attributes(updates)

    # --- actions: validated first, then applied to the state in place -----------------------

    def _check(self, action: ActionModel) -> None:
        try:
            machine.validate(self._state, action, workflow.now())
        except Refusal as refusal:
            raise refusal_error(refusal) from None

    def _apply(self, action: ActionModel, *, signal: bool = False) -> None:
        seq = self._state.next_seq
        outcome = machine.apply(self._state, action, workflow.now(), in_place=True)
        self._outbox.extend(outcome.notifications)
        self._changed = True
        applied = AppliedAction(
            seq=seq,
            at=workflow.now(),
            update=ACTIONS.of(action).update,
            body=action.model_dump(mode="json"),
            signal=signal,
        )
        self._applied.append(applied)

    def _act(self, action: ActionModel) -> TicketView:
        try:
            self._apply(action)
        except Refusal as refusal:
            # Validated, so only an update accepted together with one that changed the ticket
            # first (in the same workflow task) gets here.
            raise refusal_error(refusal) from None
        return self._state.view()

    def _signalled(self, action: ActionModel) -> None:
        # A signal cannot be refused back to its sender: log it and leave the ticket as is.
        timed = ACTIONS.of(action).check_at is None or workflow.patched(TIMED_SIGNAL_CHECKS_PATCH)
        try:
            machine.validate(self._state, action, workflow.now(), timed=timed)
            self._apply(action, signal=True)
        except Refusal as refusal:
            workflow.logger.warning("Ignored %s signal: %s", type(action).__name__, refusal.message)

    # --- queries --------------------------------------------------------------------------

    @workflow.query
    def state(self) -> TicketState:
        return self._state


follow_registry(TicketWorkflow)
