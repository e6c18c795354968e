"""`notify_and_record`: one step of a ticket in one activity (issue 18).

A step of a ticket (its intake, a deadline that fired, an action) raises notices and a record.
Each used to be an activity of its own: a `deliver_notification` per notice beside a
`record_ticket`, each a round of the Temporal server's work (three history events, a task
through matching, a workflow task for its completion). In a storm that work, not this code,
is what a ticket's deadline waits on (docs/benchmarks.md). This activity does the step's work in
one: it sends the notices first, each as `deliver_notification` would (the same idempotency
key, the same sinks, the same grouping under an incident), then writes the record and the
deliveries in one transaction.

Nothing here holds anything back that the separate activities did not:

- a notice whose send fails is not retried here: its key comes back as unsent, and the ticket
  hands it to `deliver_notification` and its retries, so a sink that is down delays nothing
  else (not the record, not the other notices);
- the record comes after the sends, so a database that is away or slow delays no notice; if it
  cannot be written within the record budget, the outcome says so and the ticket writes it
  through `record_ticket` and its retries (with the deliveries this step could not record);
- a record the database refuses on its data is quarantined as `record_ticket` does, and the
  activity fails with the same non-retryable `RecordQuarantined`, its details carrying what
  was sent so that the ticket records those deliveries later;
- a retry (the worker died mid-step) first looks in the outbox for notices already delivered,
  as a retried `deliver_notification` does, so a crash sends a notice again only when it
  landed between the send and its record, with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import DATABASE_ERRORS, NotificationDelivery, Sent
from activities.read_model import TicketReadModel
from workflows.models import Delivery, StepOutcome, TicketStep

log = logging.getLogger("escalator.step")

# As long as `record_ticket` may take (its start-to-close): a busy SQLite writer in a storm is
# waited for, not traded for a second activity. The step's own timeout leaves room for the sends.
RECORD_BUDGET_SECONDS = 30.0


class TicketSteps:
    """The step activity, with the worker's delivery and read model."""

    def __init__(self, delivery: NotificationDelivery, read_model: TicketReadModel) -> None:
        self._delivery = delivery
        self._read_model = read_model

    @activity.defn(name="notify_and_record")
    async def notify_and_record(self, step: TicketStep) -> StepOutcome:
        attempt = activity.info().attempt
        results = await asyncio.gather(*(self._send(each, attempt) for each in step.deliveries))
        sent = [result for result in results if result is not None]
        unsent = [
            each.notification.key
            for each, result in zip(step.deliveries, results, strict=True)
            if result is None
        ]
        to_record = [each for each in sent if not each.held]
        outcome = StepOutcome(delivered=[each.outcome for each in sent], unsent=unsent)
        try:
            async with asyncio.timeout(RECORD_BUDGET_SECONDS):
                await self._read_model.write(step.record, deliveries=[each.row for each in to_record])
        except ApplicationError as refused:  # quarantined: the deliveries did not land with it
            recorded = await self._delivery.record_sent(to_record)
            for each in to_record:
                each.outcome.recorded = recorded
            raise ApplicationError(
                refused.message, outcome, type=refused.type, non_retryable=True
            ) from refused
        except DATABASE_ERRORS as error:
            why = str(error) or type(error).__name__
            log.warning(
                "Could not record ticket %s with its step (%s); it is written through record_ticket",
                step.record.row.ticket_id,
                why,
            )
            for each in to_record:
                each.outcome.recorded = False
            outcome.written = False
        return outcome

    async def _send(self, delivery: Delivery, attempt: int) -> Sent | None:
        """The notice sent (or held for its incident's digest, or found delivered by an earlier
        attempt), or None: it could not go, and its own activity retries it."""
        notification = delivery.notification
        if attempt > 1:
            done = await self._delivery.delivered_already(notification)
            if done is not None:
                return Sent(notification, done, held=True)
        try:
            return await self._delivery.send_once(delivery, attempt)
        except ApplicationError as failed:
            log.warning(
                "%s/%s not sent with its step, handed to its own retries: %s",
                notification.ticket_id,
                notification.key,
                failed.message,
            )
            return None
