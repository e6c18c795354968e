"""Idempotency keys: what each key was first used for, per API key.

A retry with the same key and the same request goes through (Temporal's workflow id and
update id make it apply once); the same key with a different request is refused, so a
client bug never silently files or changes the wrong thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import IdempotencyRecord, dialect_insert


@dataclass(frozen=True)
class Claim:
    """A key's first use: the request's digest, and what it made (a ticket id), if anything."""

    digest: str
    resource_id: str | None


async def claim(
    *, session: AsyncSession, scope: str, key: str, digest: str, resource_id: str | None = None
) -> Claim | None:
    """Record `key` for `digest` (and the `resource_id` it will make) in `scope` if new.

    Returns the first claim, whose `resource_id` a retry must reuse; None if the key was used
    for another request. Committed at once: the claim must outlive a crash between it and the
    work it guards, so that the retry finds it and goes through. The session's connection goes
    back to the pool before the work: an action then waits on its workflow, for as long as no
    worker runs, and must not starve intake of connections meanwhile.
    """
    await session.execute(
        dialect_insert(session, IdempotencyRecord)
        .values(scope=scope, key=key, digest=digest, resource_id=resource_id)
        .on_conflict_do_nothing(index_elements=[IdempotencyRecord.scope, IdempotencyRecord.key])
    )
    await session.commit()
    first = (
        await session.execute(
            select(IdempotencyRecord.digest, IdempotencyRecord.resource_id).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
    ).one()
    await session.commit()
    if first.digest != digest:
        return None
    return Claim(digest=first.digest, resource_id=first.resource_id)
