"""Notifications: written to an outbox table that a delivery process drains.

Email, chat and paging transports read the outbox; the workflow only needs the write to be
durable and idempotent.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.db import OutboxNotification, dialect_insert
from workflows.models import Notification

log = logging.getLogger("escalator.notify")


class Notifier:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn(name="notify")
    async def notify(self, notification: Notification) -> None:
        """Queue a notification once, keyed by (ticket id, key): a retry is a no-op."""
        async with self._sessionmaker.begin() as session:
            stmt = dialect_insert(session, OutboxNotification).values(notification.model_dump(mode="json"))
            result = await session.execute(
                stmt.on_conflict_do_nothing(
                    index_elements=[OutboxNotification.ticket_id, OutboxNotification.key]
                )
            )
        if result.rowcount:  # type: ignore[attr-defined]
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
