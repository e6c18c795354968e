"""Idempotency keys: what each key was first used for, per principal.

A retry with the same key and the same request goes through (Temporal's workflow id and
update id make it apply once); the same key with a different request is refused, so a
client bug never silently files or changes the wrong thing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import IdempotencyRecord, dialect_insert


async def claim(*, session: AsyncSession, scope: str, key: str, digest: str) -> bool:
    """Record `key` for `digest` in `scope` if new. False if it was used for another request.

    Committed at once: the claim must outlive a crash between it and the work it guards,
    so that the retry finds it and goes through. The session's connection goes back to the
    pool before the work: an action then waits on its workflow, for as long as no worker
    runs, and must not starve intake of connections meanwhile.
    """
    await session.execute(
        dialect_insert(session, IdempotencyRecord)
        .values(scope=scope, key=key, digest=digest)
        .on_conflict_do_nothing(index_elements=[IdempotencyRecord.scope, IdempotencyRecord.key])
    )
    await session.commit()
    first = await session.scalar(
        select(IdempotencyRecord.digest).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )
    await session.commit()
    return first == digest
