"""The notification outbox: every notice a ticket raised, and how it was delivered.

The ticket's `record_ticket` activity queues notices in the same transaction as the events that
raised them (activities/read_model.py); the `deliver_notification` activity sends each one and
records its delivery on the same row (activities/delivery.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Executable, Table, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import OutboxNotification, utcnow
from workflows.models import DeliveryOutcome, Notification


async def queue_notifications(
    *, session: AsyncSession, notifications: list[Notification]
) -> list[Notification]:
    """Queue each notification once, keyed by (ticket id, key): a retry is a no-op.

    Returns the ones queued now (not by an earlier attempt), to log once committed.
    """
    if not notifications:
        return []
    now = utcnow()
    rows = [{**n.model_dump(mode="json"), "created_at": now} for n in notifications]
    queued = {(row.ticket_id, row.key) for row in await session.execute(_outbox_insert(session), rows)}
    return [n for n in notifications if (n.ticket_id, n.key) in queued]


# Built once per backend, on the table rather than the ORM class: the ORM's bulk-insert path
# and a statement whose VALUES change with every row count cost more than the insert itself.
_OUTBOX_INSERTS: dict[str, Executable] = {}


def _outbox_insert(session: AsyncSession) -> Executable:
    backend = session.get_bind().dialect.name
    stmt = _OUTBOX_INSERTS.get(backend)
    if stmt is None:
        table = cast(Table, OutboxNotification.__table__)
        insert = postgresql_insert(table) if backend == "postgresql" else sqlite_insert(table)
        stmt = _OUTBOX_INSERTS[backend] = insert.on_conflict_do_nothing(
            index_elements=[table.c.ticket_id, table.c.key]
        ).returning(table.c.ticket_id, table.c.key)
    return stmt


async def list_outbox(*, session: AsyncSession, ticket_id: str) -> list[Notification]:
    records = await list_deliveries(session=session, ticket_id=ticket_id)
    return [Notification.model_validate(record, from_attributes=True) for record in records]


async def list_deliveries(*, session: AsyncSession, ticket_id: str) -> list[OutboxNotification]:
    """The ticket's outbox rows, oldest first: each notice and how it was delivered."""
    records = await session.scalars(
        select(OutboxNotification)
        .where(OutboxNotification.ticket_id == ticket_id)
        .order_by(OutboxNotification.created_at, OutboxNotification.key)
    )
    return list(records)


# --- The outbox rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    """A notice's outbox row to insert with `values`, or to apply `changes` to while it is
    undelivered."""

    values: dict[str, Any]
    changes: dict[str, Any]


async def outbox_upsert(session: AsyncSession, values: dict[str, Any], changes: dict[str, Any]) -> None:
    """Insert the notice's row with `values`, or apply `changes` to it while undelivered: a
    delivery may be recorded before `record_ticket` queues the notice, and never undone.

    The statement is built once per backend and set of changed columns, and the row goes in as
    parameters (the VALUES name the row's keys): building it with the values inline was the
    largest part of a step's time in the worker (docs/benchmarks.md, "The step's own cost")."""
    await outbox_upsert_many(session, [OutboxRow(values, changes)])


async def outbox_upsert_many(session: AsyncSession, rows: Sequence[OutboxRow]) -> None:
    """`outbox_upsert` for many rows: one execution per set of changed columns."""
    by_changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_changes.setdefault(tuple(row.changes), []).append({**row.values, **row.changes})
    for changed, params in by_changes.items():
        await session.execute(_outbox_upsert(session, changed), params)


_OUTBOX_UPSERTS: dict[tuple[str, tuple[str, ...]], Executable] = {}


def _outbox_upsert(session: AsyncSession, changed: tuple[str, ...]) -> Executable:
    backend = session.get_bind().dialect.name
    stmt = _OUTBOX_UPSERTS.get((backend, changed))
    if stmt is None:
        table = cast(Table, OutboxNotification.__table__)
        insert = postgresql_insert(table) if backend == "postgresql" else sqlite_insert(table)
        stmt = _OUTBOX_UPSERTS[(backend, changed)] = insert.on_conflict_do_update(
            index_elements=[table.c.ticket_id, table.c.key],
            set_={name: insert.excluded[name] for name in changed},
            where=table.c.delivered_at.is_(None),
        )
    return stmt


def notice_columns(notification: Notification) -> dict[str, Any]:
    return {**notification.model_dump(mode="json"), "created_at": utcnow()}


async def record_delivery(
    *,
    session: AsyncSession,
    notification: Notification,
    outcome: DeliveryOutcome,
    group_key: str | None = None,
) -> None:
    """`group_key`: the incident page this notice opened (store/incident_notices.py)."""
    row = delivery_row(notification, outcome, group_key)
    await outbox_upsert(session, row.values, row.changes)


def delivery_row(
    notification: Notification, outcome: DeliveryOutcome, group_key: str | None = None
) -> OutboxRow:
    """The outbox row that records a notice's delivery."""
    changes = _delivered(outcome) | ({"group_key": group_key} if group_key else {})
    return OutboxRow(notice_columns(notification), changes)


async def record_attempt(
    *, session: AsyncSession, notification: Notification, attempts: int, error: str
) -> None:
    changes = {"attempts": attempts, "last_error": error[:2000], "last_attempt_at": utcnow()}
    await outbox_upsert(session, notice_columns(notification), changes)


def _delivered(outcome: DeliveryOutcome) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "channel": outcome.channel.value,
        "attempts": outcome.attempts,
        "last_error": outcome.last_error,
        "last_attempt_at": outcome.delivered_at or utcnow(),
    }
    if outcome.delivered_at is not None:
        changes |= {
            "sink": outcome.sink,
            "recipients": ", ".join(outcome.recipients),
            "delivered_at": outcome.delivered_at,
        }
    return changes


async def record_outcomes(*, session: AsyncSession, outcomes: list[DeliveryOutcome]) -> None:
    """Outcomes the delivery activity could not write (the database was away), written later
    by `record_ticket` or `record_deliveries`. The notice's row exists by then."""
    for outcome in outcomes:
        changes = _delivered(outcome)
        if outcome.delivered_at is None:
            # Given up: keep the attempts the row counted, add the last error.
            changes = {"last_error": outcome.last_error, "last_attempt_at": utcnow()}
        await session.execute(
            update(OutboxNotification)
            .where(
                OutboxNotification.ticket_id == outcome.ticket_id,
                OutboxNotification.key == outcome.key,
                OutboxNotification.delivered_at.is_(None),
            )
            .values(**changes)
        )
