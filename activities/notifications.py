"""Notifications: written to an outbox table that a delivery process drains.

Email, chat and paging transports read the outbox; the workflow only needs the write to be
durable and idempotent. The ticket's `record_ticket` activity queues them in the same
transaction as the events that raised them (activities/read_model.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.db import OutboxNotification, dialect_insert
from workflows.models import Notification

log = logging.getLogger("escalator.notify")


async def queue_notifications(
    *, session: AsyncSession, notifications: list[Notification]
) -> list[Notification]:
    """Queue each notification once, keyed by (ticket id, key): a retry is a no-op.

    Returns the ones queued now (not by an earlier attempt), to log once committed.
    """
    if not notifications:
        return []
    insert = dialect_insert(session, OutboxNotification)
    stmt = (
        insert.values([n.model_dump(mode="json") for n in notifications])
        .on_conflict_do_nothing(index_elements=[OutboxNotification.ticket_id, OutboxNotification.key])
        .returning(OutboxNotification.ticket_id, OutboxNotification.key)
    )
    queued = {(row.ticket_id, row.key) for row in await session.execute(stmt)}
    return [n for n in notifications if (n.ticket_id, n.key) in queued]


def log_queued(notifications: list[Notification]) -> None:
    for notification in notifications:
        log.info(
            "%s%s [%s] %s",
            "PAGE " if notification.page else "",
            notification.ticket_id,
            notification.audience.value,
            notification.subject,
        )


async def list_outbox(*, session: AsyncSession, ticket_id: str) -> list[Notification]:
    records = await session.scalars(
        select(OutboxNotification)
        .where(OutboxNotification.ticket_id == ticket_id)
        .order_by(OutboxNotification.created_at, OutboxNotification.key)
    )
    return [Notification.model_validate(record, from_attributes=True) for record in records]
