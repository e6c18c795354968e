"""Delivering notices: one `deliver_notification` activity per notice, retried by Temporal.

Each notice has a stable key, `<ticket id>/<event seq>-<audience>`. It is the idempotency key
of every send (the `Idempotency-Key` header for chat and the pager, the email's Message-ID),
and the outbox row (ticket id, key) records the delivery before the activity completes:

1. a notice the outbox already marks delivered is not sent again (a retry after the record,
   or the activity completing after a crash that lost its result);
2. otherwise it is sent on its channel, through its sink, or to the log when none is set;
3. then the outbox row records the channel, sink, recipients, attempts and delivery time.

A crash between 2 and 3 sends the notice again on the next attempt: at least once, with at
most one extra copy per crash that lands in that window, carrying the same idempotency key
(chat and pager receivers collapse it; mail clients thread or collapse the same Message-ID).

The database is never on a page's critical path: when it cannot be reached, the notice goes
out anyway (recipients come from what this worker last read), and the outcome returns
unrecorded so the workflow writes it with its next `record_ticket`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from runtime.settings import Settings
from sinks import channels
from sinks.channels import SendFailed
from store.db import OutboxNotification, utcnow
from store.incident_notices import GROUPED_SINK, claim_incident_page, hold_for_digest, record_grouped
from store.notifications import OutboxRow, delivery_row, record_attempt, record_delivery, record_outcomes
from store.recipients import DEFAULT_TIMEZONE, Recipients, pager_routing_key, recipients_for
from workflows.enums import Audience, NoticeChannel, PageAction
from workflows.incident_notices import Grouping, grouped_page_key, grouping_for, page_dedup_key
from workflows.models import Delivery, DeliveryOutcome, Notification

log = logging.getLogger("escalator.notify")

# The database may be slow or away; a page must not wait on it for longer than this before it
# is sent. The record after the send holds back only the activity's completion: SQLite's one
# writer is busy for seconds in a burst, and an unrecorded outcome costs the ticket a flush.
DATABASE_BUDGET_SECONDS = 2.0
RECORD_BUDGET_SECONDS = 10.0
# What a database that cannot answer raises, through SQLAlchemy or below it.
DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
LOG_SINK = "log"
# A linked ticket's notice waiting for its incident's digest (store/incident_notices.py).
DIGEST_SINK = "digest"
NOBODY = Recipients(emails=(), chat_channel=None, timezone=DEFAULT_TIMEZONE, pager_routing_key=None)


def idempotency_key(notification: Notification) -> str:
    return f"{notification.ticket_id}/{notification.key}"


def ticket_link(settings: Settings, ticket_id: str) -> str:
    return f"{settings.public_url.rstrip('/')}/console/tickets/{ticket_id}"


class NotificationDelivery:
    """The delivery activity, with the sinks from settings and one HTTP client per worker."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._http = http or httpx.AsyncClient()
        # The recipients this worker last read, for when the database is away.
        self._known: dict[tuple[str, str | None, Audience], Recipients] = {}
        # Test hook: runs between the send and its record (tests/test_delivery.py crashes there).
        self.after_send: Callable[[Delivery], Awaitable[None]] | None = None

    @activity.defn(name="deliver_notification")
    async def deliver_notification(self, delivery: Delivery) -> DeliveryOutcome:
        notification = delivery.notification
        info = activity.info()
        attempt = info.attempt + delivery.tried
        # Only a retry (a step's try counts), or a notice handed on by its closed ticket, can
        # find itself delivered.
        if attempt > 1 or info.workflow_type != "TicketWorkflow":
            done = await self.delivered_already(notification)
            if done is not None:
                return done
        sent = await self.send_once(delivery, attempt)
        if sent.held:
            return sent.outcome
        sent.outcome.recorded = await self._try_database(
            lambda session: sent.record(session),
            "record the delivery of",
            notification,
            RECORD_BUDGET_SECONDS,
        )
        return sent.outcome

    async def record_sent(self, sent: Sequence[Sent]) -> bool:
        """Record these deliveries in one transaction of their own: whether they landed."""

        async def write(session: AsyncSession) -> None:
            for each in sent:
                await each.record(session)

        return bool(sent) and await self._try_database(
            write, "record the deliveries of", sent[0].notification, RECORD_BUDGET_SECONDS
        )

    async def send_once(self, delivery: Delivery, attempt: int) -> Sent:
        """One attempt at a notice: held for its incident's digest (recorded), or sent on its
        channel and not yet recorded. Raises the ApplicationError its activity fails with: a
        failed send (`SendFailed`), or an outbox that could not hold a grouped notice."""
        notification = delivery.notification
        grouping = grouping_for(notification)
        group_key: str | None = None
        if grouping is not None:
            # A linked ticket's notice to ConnectSoft's own people (DESIGN.md §13).
            group_key = await self._group(notification, grouping, attempt)
            if group_key is None:
                return Sent(notification, _held(notification, grouping, attempt), held=True)
        recipients = await self._recipients(delivery) if self._has_sink(notification) else NOBODY
        try:
            sink, to = await self._send(delivery, recipients)
        except SendFailed as failed:
            await self._record_failure(notification, attempt, str(failed))
            raise ApplicationError(
                f"{notification.channel} to {notification.audience}: {failed}",
                type="SendFailed",
                non_retryable=not failed.retryable,
            ) from None
        if self.after_send is not None:
            await self.after_send(delivery)
        outcome = DeliveryOutcome(
            ticket_id=notification.ticket_id,
            key=notification.key,
            channel=_channel(notification),
            sink=sink,
            recipients=to,
            attempts=attempt,
            delivered_at=utcnow(),
        )
        log.info(
            "%s%s [%s] %s via %s: %s",
            "PAGE " if notification.page else "",
            notification.ticket_id,
            notification.audience.value,
            outcome.channel.value,
            sink,
            notification.subject,
        )
        return Sent(notification, outcome, group_key=group_key)

    async def _group(self, notification: Notification, grouping: Grouping, attempt: int) -> str | None:
        """Hold a linked ticket's notice for its incident's digest, or record its page notice
        as grouped under the incident's page: None, and nothing is sent. The page's group key
        when this notice is the trigger that opens the incident's page: it is sent."""
        incident_id = notification.incident_id
        assert incident_id is not None
        now = utcnow()
        page_key = grouped_page_key(incident_id)
        opens = grouping == Grouping.INCIDENT_PAGE and notification.page_action in (None, PageAction.TRIGGER)
        if opens and await self._opens_incident_page(notification, incident_id, now):
            return page_key

        async def record(session: AsyncSession) -> None:
            if grouping == Grouping.DIGEST:
                await hold_for_digest(session=session, notification=notification, attempts=attempt, at=now)
            else:  # a later trigger, or an acknowledgement or resolution: the incident settles its page
                await record_grouped(
                    session=session, notification=notification, group_key=page_key, attempts=attempt, at=now
                )

        if not await self._try_database(
            record, f"record ({grouping.value})", notification, RECORD_BUDGET_SECONDS
        ):
            raise ApplicationError(
                f"the outbox could not record {notification.key} for incident {incident_id}; retrying",
                type="DatabaseUnavailable",
            )
        return None

    async def _opens_incident_page(self, notification: Notification, incident_id: str, now: datetime) -> bool:
        claimed: list[bool] = []

        async def claim(session: AsyncSession) -> None:
            claimed.append(
                await claim_incident_page(
                    session=session,
                    incident_id=incident_id,
                    audience=notification.audience,
                    trigger_key=idempotency_key(notification),
                    at=now,
                )
            )

        # The database away: page anyway; the pager collapses triggers on one dedup key.
        return not await self._try_database(claim, "claim the incident page for", notification) or claimed[0]

    def _has_sink(self, notification: Notification) -> bool:
        """Whether the notice's channel has a sink set (else it is only logged, to nobody)."""
        settings = self._settings
        match _channel(notification):
            case NoticeChannel.PAGER:
                # A partner's on-call without a pager of its own is paged by email.
                return settings.pager_url is not None or settings.smtp_url is not None
            case NoticeChannel.CHAT:
                return settings.chat_webhook_url is not None
            case _:
                return settings.smtp_url is not None

    # --- the database, never in the way -----------------------------------------------------

    async def _try_database(
        self,
        work: Callable[[AsyncSession], Awaitable[Any]],
        doing: str,
        notification: Notification,
        budget: float = DATABASE_BUDGET_SECONDS,
    ) -> bool:
        try:
            async with asyncio.timeout(budget), self._sessionmaker.begin() as session:
                await work(session)
        except DATABASE_ERRORS as err:
            why = str(err) or type(err).__name__  # a timeout says nothing by itself
            log.warning("Could not %s %s/%s: %s", doing, notification.ticket_id, notification.key, why)
            return False
        return True

    async def delivered_already(self, notification: Notification) -> DeliveryOutcome | None:
        found: list[OutboxNotification] = []

        async def look(session: AsyncSession) -> None:
            row = await session.scalar(
                select(OutboxNotification).where(
                    OutboxNotification.ticket_id == notification.ticket_id,
                    OutboxNotification.key == notification.key,
                    OutboxNotification.delivered_at.is_not(None),
                )
            )
            if row is not None:
                found.append(row)

        await self._try_database(look, "look up", notification)
        if not found:
            return None
        row = found[0]
        return DeliveryOutcome(
            ticket_id=row.ticket_id,
            key=row.key,
            channel=_channel(notification),
            sink=row.sink or LOG_SINK,
            recipients=[each for each in (row.recipients or "").split(", ") if each],
            attempts=row.attempts,
            delivered_at=row.delivered_at,
        )

    async def _recipients(self, delivery: Delivery) -> Recipients:
        audience = delivery.notification.audience
        known = (delivery.customer_id, delivery.partner_id, audience)
        found: list[Recipients] = []

        async def look(session: AsyncSession) -> None:
            found.append(
                await recipients_for(
                    session=session,
                    settings=self._settings,
                    customer_id=delivery.customer_id,
                    partner_id=delivery.partner_id,
                    audience=audience,
                )
            )

        if await self._try_database(look, "look up the recipients of", delivery.notification):
            self._known[known] = found[0]
            return found[0]
        if known in self._known:
            return self._known[known]
        # Pages and chat need nothing from the database; an email does.
        pager = pager_routing_key(self._settings, audience, delivery.partner_id)
        return Recipients(emails=(), chat_channel=None, timezone=DEFAULT_TIMEZONE, pager_routing_key=pager)

    async def _record_failure(self, notification: Notification, attempt: int, error: str) -> None:
        await self._try_database(
            lambda session: record_attempt(
                session=session, notification=notification, attempts=attempt, error=error
            ),
            "record a failed attempt of",
            notification,
        )

    # --- the channels -----------------------------------------------------------------------

    async def _send(self, delivery: Delivery, recipients: Recipients) -> tuple[str, list[str]]:
        """Send on the notice's channel; answers the sink used and who it went to."""
        notification = delivery.notification
        channel = _channel(notification)
        settings = self._settings
        if channel == NoticeChannel.PAGER:
            if settings.pager_url and recipients.pager_routing_key is not None:
                await self._page(delivery, recipients)
                return "pagerduty", [notification.audience.value]
            if notification.audience == Audience.PARTNER_ON_CALL and recipients.emails:
                # A partner with no pager of its own is paged by email.
                return await self._email(delivery, recipients)
            return self._logged(delivery, "no pager set")
        if channel == NoticeChannel.CHAT:
            if settings.chat_webhook_url is None:
                return self._logged(delivery, "no chat webhook set")
            await channels.post_chat(
                client=self._http,
                url=settings.chat_webhook_url.get_secret_value(),
                payload=channels.chat_payload(
                    subject=notification.subject,
                    headline=delivery.headline,
                    severity=delivery.severity,
                    level=delivery.level,
                    due_text=channels.format_due(
                        clock_name=delivery.clock,
                        due_at=delivery.due_at,
                        timezone=recipients.timezone,
                        indicative=delivery.indicative,
                    ),
                    link=ticket_link(settings, notification.ticket_id),
                    channel=recipients.chat_channel,
                ),
                idempotency_key=idempotency_key(notification),
                timeout=settings.notify_timeout_seconds,
            )
            return "webhook", [recipients.chat_channel] if recipients.chat_channel else []
        return await self._email(delivery, recipients)

    async def _email(self, delivery: Delivery, recipients: Recipients) -> tuple[str, list[str]]:
        notification = delivery.notification
        settings = self._settings
        if settings.smtp_url is None:
            return self._logged(delivery, "no SMTP server set")
        if not recipients.emails:
            if notification.audience in (Audience.CUSTOMER, Audience.PARTNER, Audience.PARTNER_ON_CALL):
                # The contacts could not be read (the database is away): try again later.
                raise SendFailed(f"no email address on file for {notification.audience}", retryable=True)
            return self._logged(delivery, "no email address on file")
        subject = notification.subject if not notification.page else f"[PAGE] {notification.subject}"
        text, html = channels.render_email(
            subject=subject,
            headline=delivery.headline,
            summary=notification.body,
            link=ticket_link(settings, notification.ticket_id),
            clock_name=delivery.clock,
            due_at=delivery.due_at,
            timezone=recipients.timezone,
            indicative=delivery.indicative,
        )
        message = channels.build_email(
            sender=settings.smtp_from,
            to=recipients.emails,
            subject=subject,
            text=text,
            html=html,
            idempotency_key=idempotency_key(notification),
        )
        await channels.send_email(
            smtp_url=settings.smtp_url.get_secret_value(),
            message=message,
            timeout=settings.notify_timeout_seconds,
        )
        return "smtp", list(recipients.emails)

    async def _page(self, delivery: Delivery, recipients: Recipients) -> None:
        notification = delivery.notification
        settings = self._settings
        assert settings.pager_url is not None and recipients.pager_routing_key is not None
        dedup_key = page_dedup_key(notification)
        # The incident's page says so; its first ticket is the one in the details and the link.
        incident = dedup_key if dedup_key != notification.ticket_id else None
        event = channels.pager_event(
            routing_key=recipients.pager_routing_key.get_secret_value(),
            action=(notification.page_action or PageAction.TRIGGER).value,
            dedup_key=dedup_key,
            summary=f"{incident}: {notification.subject}" if incident else notification.subject,
            severity=channels.pager_severity(delivery.severity),
            source="escalator",
            link=ticket_link(settings, notification.ticket_id),
            custom_details={
                "ticket": delivery.headline,
                "level": delivery.level,
                "tier": delivery.tier,
                "due": channels.format_due(
                    clock_name=delivery.clock,
                    due_at=delivery.due_at,
                    timezone="UTC",
                    indicative=delivery.indicative,
                ),
            }
            | ({"incident": incident} if incident else {}),
        )
        await channels.post_pager_event(
            client=self._http,
            url=settings.pager_url,
            event=event,
            idempotency_key=idempotency_key(notification),
            timeout=settings.notify_timeout_seconds,
        )

    def _logged(self, delivery: Delivery, why: str) -> tuple[str, list[str]]:
        log.info("(%s: logged only) %s", why, delivery.notification.body.replace("\n", " / "))
        return LOG_SINK, []


@dataclass
class Sent:
    """A notice's attempt that went through: sent (its delivery still to record, with the
    incident page it opened, if any), or held for its incident's digest (recorded already)."""

    notification: Notification
    outcome: DeliveryOutcome
    group_key: str | None = None
    held: bool = False

    async def record(self, session: AsyncSession) -> None:
        await record_delivery(
            session=session, notification=self.notification, outcome=self.outcome, group_key=self.group_key
        )

    @property
    def row(self) -> OutboxRow:
        """The outbox row that records this delivery (written with its step's record)."""
        return delivery_row(self.notification, self.outcome, self.group_key)


def _held(notification: Notification, grouping: Grouping, attempt: int) -> DeliveryOutcome:
    """A grouped notice's outcome: recorded in the outbox, sent (if at all) with its group."""
    held = grouping == Grouping.DIGEST
    return DeliveryOutcome(
        ticket_id=notification.ticket_id,
        key=notification.key,
        channel=_channel(notification),
        sink=DIGEST_SINK if held else GROUPED_SINK,
        attempts=attempt,
        delivered_at=None if held else utcnow(),
    )


def _channel(notification: Notification) -> NoticeChannel:
    return notification.channel or (NoticeChannel.PAGER if notification.page else NoticeChannel.CHAT)


class DeliveryRecords:
    """`record_deliveries`: for TicketDeliveries, which outlives its ticket's record_ticket."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn(name="record_deliveries")
    async def record_deliveries(self, outcomes: list[DeliveryOutcome]) -> None:
        async with self._sessionmaker.begin() as session:
            await record_outcomes(session=session, outcomes=outcomes)
