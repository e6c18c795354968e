"""Console sessions (api/console/session.py): a random id in the cookie, its SHA-256 here.

A session acts as one API key until it expires, is signed out (its row deleted), or its key is
revoked (the key is looked up on every request, and deleting a key deletes its sessions).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import ConsoleSession, utcnow
from store.keys import ApiKeyPublic, live_key

# 256 random bits, URL-safe: 43 characters.
SESSION_ID_BYTES = 32


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


async def open_session(
    *, session: AsyncSession, key_id: str, lifetime: timedelta, now: datetime | None = None
) -> str:
    """Store a new session for `key_id` and return its id (the cookie's value); expired
    sessions are swept in the same commit, so the table holds only live ones."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    session.add(
        ConsoleSession(
            id_hash=hash_session_id(session_id), key_id=key_id, created_at=now, expires_at=now + lifetime
        )
    )
    await session.commit()
    return session_id


async def key_of_session(
    *, session: AsyncSession, session_id: str, now: datetime | None = None
) -> ApiKeyPublic | None:
    """The live key a live session acts as; None if the session is unknown, expired or signed
    out, or its key revoked."""
    row = await session.get(ConsoleSession, hash_session_id(session_id))
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    return await live_key(session, row.key_id)


async def close_session(*, session: AsyncSession, session_id: str) -> None:
    """Sign out: the session's row is deleted, so its cookie no longer signs anyone in."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == hash_session_id(session_id)))
    await session.commit()
