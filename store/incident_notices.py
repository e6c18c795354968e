"""A major incident's grouped notices, in SQL (DESIGN.md §13; activities/incident_notices.py
sends them).

- Every notice keeps its own outbox row. A linked ticket's notice to an internal audience on
  chat waits there (`delivered_at` and `group_key` unset) for its incident's digest.
- A digest is claimed before it is sent: its row in `incident_digests`, one per (incident,
  audience, window start), and its notices' `group_key`, in one transaction. Sent, the digest
  and its notices are marked delivered. A digest claimed and not marked is sent again, with the
  same key and text, before anything new.
- The incident's page (`incident_pages`): the first linked ticket that pages claims it; later
  page notices are recorded as grouped under `incident-<id>/page`, never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import IncidentDigest, IncidentPage, OutboxNotification, Ticket, dialect_insert
from store.notifications import notice_columns, outbox_upsert
from workflows.enums import CLOSED_STATES, INTERNAL_AUDIENCES, Audience, ClockKind, EventKind, NoticeChannel
from workflows.enums import PageAction as Action
from workflows.incident_notices import digest_key, digest_text
from workflows.models import Notification

GROUPED_SINK = "grouped"
_DIGEST_AUDIENCES = [audience.value for audience in INTERNAL_AUDIENCES]


def _waiting(incident_id: str | None = None) -> list[Any]:
    """The outbox rows that wait for a digest (of one incident, or of any)."""
    column = OutboxNotification.incident_id
    return [
        column.is_not(None) if incident_id is None else column == incident_id,
        OutboxNotification.audience.in_(_DIGEST_AUDIENCES),
        OutboxNotification.channel == NoticeChannel.CHAT.value,
        OutboxNotification.delivered_at.is_(None),
        OutboxNotification.group_key.is_(None),
    ]


async def hold_for_digest(
    *, session: AsyncSession, notification: Notification, attempts: int, at: datetime
) -> None:
    """Record a notice as waiting for its incident's digest (a no-op once delivered)."""
    changes = {"channel": NoticeChannel.CHAT.value, "attempts": attempts, "last_attempt_at": at}
    await outbox_upsert(session, notice_columns(notification), changes)


async def waiting_groups(
    *, session: AsyncSession, incident_id: str | None = None, created_before: datetime | None = None
) -> list[tuple[str, Audience]]:
    """(incident, audience) pairs with notices waiting; only those with one made before
    `created_before`, when given."""
    query = select(OutboxNotification.incident_id, OutboxNotification.audience).where(*_waiting(incident_id))
    if created_before is not None:
        query = query.where(OutboxNotification.created_at < created_before)
    rows = await session.execute(query.distinct().order_by(OutboxNotification.incident_id))
    return [(incident, Audience(audience)) for incident, audience in rows if incident is not None]


@dataclass(frozen=True)
class DigestMessage:
    """A claimed digest: what is sent, under which key."""

    incident_id: str
    audience: Audience
    window_start: datetime
    digest_key: str
    text: str
    notices: int

    @classmethod
    def of(cls, row: IncidentDigest) -> DigestMessage:
        return cls(
            row.incident_id, Audience(row.audience), row.window_start, row.digest_key, row.text, row.notices
        )


async def unsent_digests(*, session: AsyncSession, incident_id: str | None = None) -> list[DigestMessage]:
    """Digests claimed and not yet marked sent (a crash, or a sink that refused), oldest first."""
    query = select(IncidentDigest).where(IncidentDigest.sent_at.is_(None))
    if incident_id is not None:
        query = query.where(IncidentDigest.incident_id == incident_id)
    return [
        DigestMessage.of(row) for row in await session.scalars(query.order_by(IncidentDigest.window_start))
    ]


@dataclass(frozen=True)
class IncidentFacts:
    """What a digest says about its incident beside the notices: given by the incident's
    workflow, else what the read model knows."""

    title: str | None = None
    open_tickets: int | None = None
    linked_tickets: int | None = None


async def claim_digest(
    *,
    session: AsyncSession,
    incident_id: str,
    audience: Audience,
    window_start: datetime,
    window_seconds: float,
    facts: IncidentFacts,
    at: datetime,
) -> DigestMessage | None:
    """Claim this window's digest for (incident, audience) with every notice waiting for it.
    None: the window has its digest already, or nothing waits."""
    key = digest_key(incident_id, audience, window_start)
    insert = dialect_insert(session, IncidentDigest).values(
        incident_id=incident_id,
        audience=audience.value,
        window_start=window_start,
        digest_key=key,
        title=facts.title,
        text="",
        created_at=at,
    )
    claimed = await session.execute(insert.on_conflict_do_nothing().returning(IncidentDigest.digest_key))
    if claimed.first() is None:
        return None
    await session.execute(
        update(OutboxNotification)
        .where(*_waiting(incident_id), OutboxNotification.audience == audience.value)
        .values(group_key=key)
        .execution_options(synchronize_session=False)
    )
    counted = await session.execute(
        select(OutboxNotification.event_kind, OutboxNotification.clock_kind, func.count())
        .where(OutboxNotification.group_key == key)
        .group_by(OutboxNotification.event_kind, OutboxNotification.clock_kind)
    )
    counts = {
        (EventKind(kind) if kind else None, ClockKind(clock) if clock else None): number
        for kind, clock, number in counted
    }
    if not counts:  # another flusher took them: no digest for nothing
        await session.execute(delete(IncidentDigest).where(IncidentDigest.digest_key == key))
        return None
    if facts.title is None:
        facts = IncidentFacts(
            await _known_title(session, incident_id), facts.open_tickets, facts.linked_tickets
        )
    if facts.linked_tickets is None:
        facts = IncidentFacts(facts.title, *await read_model_counts(session=session, incident_id=incident_id))
    text = digest_text(
        incident_id=incident_id,
        title=facts.title,
        counts=counts,
        window_seconds=window_seconds,
        open_tickets=facts.open_tickets,
        linked_tickets=facts.linked_tickets,
    )
    digest = await session.get_one(IncidentDigest, (incident_id, audience.value, window_start))
    digest.title, digest.text, digest.notices = facts.title, text, sum(counts.values())
    return DigestMessage.of(digest)


async def _known_title(session: AsyncSession, incident_id: str) -> str | None:
    """The title the incident's workflow last gave a digest of this incident."""
    return await session.scalar(
        select(IncidentDigest.title)
        .where(IncidentDigest.incident_id == incident_id, IncidentDigest.title.is_not(None))
        .order_by(IncidentDigest.window_start.desc())
        .limit(1)
    )


async def read_model_counts(*, session: AsyncSession, incident_id: str) -> tuple[int | None, int | None]:
    """(open, linked) tickets of the incident, when the read model records the link (the
    tickets' `incident_id` column); (None, None) when it does not."""
    column = Ticket.__table__.c.get("incident_id")
    if column is None:
        return None, None
    closed = [status.value for status in CLOSED_STATES]
    linked, still_open = (
        await session.execute(
            select(func.count(), func.count().filter(Ticket.status.not_in(closed))).where(
                column == incident_id
            )
        )
    ).one()
    return int(still_open), int(linked)


async def mark_digest_sent(
    *, session: AsyncSession, digest: DigestMessage, sink: str, recipients: Sequence[str], at: datetime
) -> None:
    """The digest went out: it and each of its notices are delivered, under its key."""
    who = ", ".join(recipients)
    await session.execute(
        update(IncidentDigest)
        .where(IncidentDigest.digest_key == digest.digest_key)
        .values(sent_at=at, sink=sink, recipients=who, attempts=IncidentDigest.attempts + 1, last_error=None)
    )
    await session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.group_key == digest.digest_key, OutboxNotification.delivered_at.is_(None))
        .values(delivered_at=at, sink=sink, recipients=who, last_attempt_at=at)
        .execution_options(synchronize_session=False)
    )


async def record_digest_failure(*, session: AsyncSession, digest_key: str, error: str) -> None:
    await session.execute(
        update(IncidentDigest)
        .where(IncidentDigest.digest_key == digest_key)
        .values(attempts=IncidentDigest.attempts + 1, last_error=error[:2000])
    )


# --- The incident's page --------------------------------------------------------------------------


async def claim_incident_page(
    *, session: AsyncSession, incident_id: str, audience: Audience, trigger_key: str, at: datetime
) -> bool:
    """Whether the notice with `trigger_key` is the one that triggers the incident's page: the
    first to page, the same one again (a retry), or the first after the page was resolved."""
    insert = dialect_insert(session, IncidentPage).values(
        incident_id=incident_id,
        audience=audience.value,
        cycle=1,
        status=Action.TRIGGER.value,
        trigger_key=trigger_key,
        triggered_at=at,
        updated_at=at,
    )
    claimed = await session.execute(insert.on_conflict_do_nothing().returning(IncidentPage.incident_id))
    if claimed.first() is not None:
        return True
    page = await session.get_one(IncidentPage, (incident_id, audience.value), populate_existing=True)
    if page.trigger_key == trigger_key:
        return True
    if page.status != Action.RESOLVE.value:
        return False
    reopened = await session.execute(
        update(IncidentPage)
        .where(
            IncidentPage.incident_id == incident_id,
            IncidentPage.audience == audience.value,
            IncidentPage.status == Action.RESOLVE.value,
        )
        .values(
            cycle=IncidentPage.cycle + 1,
            status=Action.TRIGGER.value,
            trigger_key=trigger_key,
            triggered_at=at,
            updated_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(reopened, "rowcount", 0) == 1)


async def record_grouped(
    *, session: AsyncSession, notification: Notification, group_key: str, attempts: int, at: datetime
) -> None:
    """A page notice that went out as the incident's page: recorded, not sent."""
    changes = {
        "channel": NoticeChannel.PAGER.value,
        "sink": GROUPED_SINK,
        "recipients": "",
        "group_key": group_key,
        "attempts": attempts,
        "last_attempt_at": at,
        "delivered_at": at,
    }
    await outbox_upsert(session, notice_columns(notification), changes)


async def pages_to_settle(*, session: AsyncSession, incident_id: str, action: Action) -> list[IncidentPage]:
    """The incident's pages that `action` changes: an open one for resolve, a triggered one
    for acknowledge."""
    if action == Action.TRIGGER:
        raise ValueError("an incident's page is triggered by its tickets, not settled")
    allowed = [Action.TRIGGER.value] + ([Action.ACKNOWLEDGE.value] if action == Action.RESOLVE else [])
    query = select(IncidentPage).where(
        IncidentPage.incident_id == incident_id, IncidentPage.status.in_(allowed)
    )
    return list(await session.scalars(query.order_by(IncidentPage.audience)))


async def mark_page_settled(
    *, session: AsyncSession, page: IncidentPage, action: Action, at: datetime
) -> None:
    await session.execute(
        update(IncidentPage)
        .where(
            IncidentPage.incident_id == page.incident_id,
            IncidentPage.audience == page.audience,
            IncidentPage.cycle == page.cycle,
        )
        .values(status=action.value, updated_at=at)
        .execution_options(synchronize_session=False)
    )


async def incident_page(*, session: AsyncSession, incident_id: str) -> IncidentPage | None:
    """The incident's page as the pager last heard of it (ConnectSoft's on-call's, or the first
    audience's), or None when no linked ticket has paged."""
    pages = list(
        await session.scalars(
            select(IncidentPage)
            .where(IncidentPage.incident_id == incident_id)
            .order_by(IncidentPage.audience != Audience.ON_CALL.value, IncidentPage.audience)
        )
    )
    return pages[0] if pages else None
