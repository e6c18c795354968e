"""A major incident's digests and page (DESIGN.md §13): the activities its workflow calls, and
the worker's loop that sends what no workflow flushed.

While a ticket is linked, `deliver_notification` (activities/delivery.py) does not send its
notices to ConnectSoft's own audiences: a chat notice waits in the outbox for the incident's
digest, and a page notice becomes the incident's page (store/incident_notices.py).

Where the digests run, and why it is durable:
- `flush_incident_digests`, an activity the incident's workflow calls once per window (its
  timer survives every restart). It names the incident, its title and ticket counts.
- `DigestFlusher.run`, a loop in every worker, sends the digests of notices that have waited a
  whole window with no flush (an incident whose workflow has ended, or does not call it).
- Both claim a digest in the database before sending it, with its key (incident, audience,
  window start) and text, and mark it after. A crash in between leaves it claimed and unsent:
  the next flush, from either, sends it first with the same key, which the chat receiver
  collapses. At most one digest per (incident, audience) per window: the window start is
  part of the digest's primary key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from runtime.settings import Settings
from sinks import channels
from sinks.channels import SendFailed
from store import incident_notices as store
from store.db import utcnow
from store.incident_notices import DigestMessage, IncidentFacts
from store.recipients import pager_routing_key, team_recipients
from workflows.enums import Audience, PageAction
from workflows.incident_notices import (
    IncidentDigestFlush,
    IncidentNoticesSent,
    IncidentPageSettle,
    incident_page_key,
    window_start,
)

log = logging.getLogger("escalator.notify")

LOG_SINK = "log"


class IncidentNotices:
    """The flusher of digests and the settler of incident pages, with the worker's sinks."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._http = http or httpx.AsyncClient()
        self._clock = clock
        # Test hook: runs between a digest's send and its record.
        self.after_send: Callable[[DigestMessage], Awaitable[None]] | None = None

    @property
    def window_seconds(self) -> float:
        return self._settings.incident_digest_seconds

    # --- Digests ------------------------------------------------------------------------------

    @activity.defn(name="flush_incident_digests")
    async def flush_incident_digests(self, request: IncidentDigestFlush) -> IncidentNoticesSent:
        facts = IncidentFacts(request.title, request.open_tickets, request.linked_tickets)
        try:
            sent = await self.flush(incident_id=request.incident_id, facts=facts)
        except SendFailed as failed:
            raise ApplicationError(f"incident digest: {failed}", type="SendFailed") from None
        return IncidentNoticesSent(keys=[digest.digest_key for digest in sent])

    async def flush(
        self,
        *,
        incident_id: str | None = None,
        facts: IncidentFacts | None = None,
        waited_since: datetime | None = None,
    ) -> list[DigestMessage]:
        """Send what was claimed and not sent, then this window's digest of every (incident,
        audience) with notices waiting (of one incident, when given; only notices made before
        `waited_since`, when given). Answers the digests sent."""
        now = self._clock()
        start = window_start(now, self.window_seconds)
        async with self._sessionmaker.begin() as session:
            unsent = await store.unsent_digests(session=session, incident_id=incident_id)
        for claimed in unsent:
            await self._send(claimed)
        async with self._sessionmaker.begin() as session:
            groups = await store.waiting_groups(
                session=session, incident_id=incident_id, created_before=waited_since
            )
        sent = list(unsent)
        for incident, audience in groups:
            async with self._sessionmaker.begin() as session:
                digest = await store.claim_digest(
                    session=session,
                    incident_id=incident,
                    audience=audience,
                    window_start=start,
                    window_seconds=self.window_seconds,
                    facts=facts if facts is not None and incident == incident_id else IncidentFacts(),
                    at=now,
                )
            if digest is not None:
                await self._send(digest)
                sent.append(digest)
        return sent

    async def _send(self, digest: DigestMessage) -> None:
        settings = self._settings
        async with self._sessionmaker.begin() as session:
            team = await team_recipients(session, settings, digest.audience)
        sink, to = LOG_SINK, [team.chat_channel] if team.chat_channel else []
        try:
            if settings.chat_webhook_url is None:
                log.info("(no chat webhook set: logged only) [%s] %s", digest.audience.value, digest.text)
                to = []
            else:
                sink = "webhook"
                await channels.post_chat(
                    client=self._http,
                    url=settings.chat_webhook_url.get_secret_value(),
                    payload=channels.digest_payload(text=digest.text, channel=team.chat_channel),
                    idempotency_key=digest.digest_key,
                    timeout=settings.notify_timeout_seconds,
                )
        except SendFailed as failed:
            async with self._sessionmaker.begin() as session:
                await store.record_digest_failure(
                    session=session, digest_key=digest.digest_key, error=str(failed)
                )
            raise
        if self.after_send is not None:
            await self.after_send(digest)
        async with self._sessionmaker.begin() as session:
            await store.mark_digest_sent(
                session=session, digest=digest, sink=sink, recipients=to, at=self._clock()
            )
        log.info("digest %s [%s] via %s: %s", digest.digest_key, digest.audience.value, sink, digest.text)

    async def run(self, stop: asyncio.Event) -> None:
        """The worker's loop: once per window, the digests of notices that waited a whole window
        with no flush, and any digest claimed and not sent. Errors are logged, then retried."""
        window = timedelta(seconds=self.window_seconds)
        while not stop.is_set():
            now = self._clock()
            try:
                await self.flush(waited_since=window_start(now, self.window_seconds) - window)
            except Exception as error:  # a sink or the database away: the next window retries
                log.warning("incident digests not flushed: %s", error)
            until_next = window_start(now, self.window_seconds) + window - self._clock()
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(until_next.total_seconds(), 0.1))
            except TimeoutError:
                continue

    # --- The incident's page ------------------------------------------------------------------

    @activity.defn(name="settle_incident_page")
    async def settle_incident_page(self, request: IncidentPageSettle) -> IncidentNoticesSent:
        """Acknowledge or resolve the incident's open pages (dedup key = the incident id); a
        retry sends with the same key, and a page already settled is left alone."""
        async with self._sessionmaker.begin() as session:
            pages = await store.pages_to_settle(
                session=session, incident_id=request.incident_id, action=request.action
            )
        keys: list[str] = []
        for page in pages:
            key = incident_page_key(request.incident_id, page.cycle, request.action)
            try:
                await self._settle(request.incident_id, Audience(page.audience), request.action, key)
            except SendFailed as failed:
                raise ApplicationError(
                    f"{request.action.value} the page of {request.incident_id}: {failed}",
                    type="SendFailed",
                    non_retryable=not failed.retryable,
                ) from None
            async with self._sessionmaker.begin() as session:
                await store.mark_page_settled(
                    session=session, page=page, action=request.action, at=self._clock()
                )
            keys.append(key)
        return IncidentNoticesSent(keys=keys)

    async def _settle(self, incident_id: str, audience: Audience, action: PageAction, key: str) -> None:
        settings = self._settings
        routing_key = pager_routing_key(settings, audience, None)
        if settings.pager_url is None or routing_key is None:
            log.info(
                "(no pager set: logged only) %s the page of %s [%s]",
                action.value,
                incident_id,
                audience.value,
            )
            return
        event = channels.pager_event(
            routing_key=routing_key.get_secret_value(),
            action=action.value,
            dedup_key=incident_id,
            summary="",
            severity="critical",
            source="escalator",
            link=None,
            custom_details=None,
        )
        await channels.post_pager_event(
            client=self._http,
            url=settings.pager_url,
            event=event,
            idempotency_key=key,
            timeout=settings.notify_timeout_seconds,
        )
