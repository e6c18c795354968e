"""Published policy versions (issue 20): `escalator policy publish FILE` stores a candidate
document here, and every process (the API, the worker, the CLI) registers the stored versions
beside the released ones (policies/*.json). The newest published version is the one tickets
filed from then on pin; an open ticket keeps the version it pinned at intake.

A process loads the table before it serves and again every ESCALATOR_POLICY_REFRESH_SECONDS. A ticket
filed under a version its worker has not loaded yet fails its first workflow task
(UnknownPolicyVersion) and Temporal retries the task until the worker has it.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import PublishedPolicy, utcnow
from workflows import policy
from workflows.policy import TicketRules

log = logging.getLogger(__name__)

# The width of published_policies.version (migration 0012).
VERSION_LENGTH = 64


class PublishRefused(ValueError):
    """A document that cannot become a new version; the message says what to change."""


def parse(text: str) -> TicketRules:
    """A candidate document, validated; an error names the first field at fault."""
    try:
        return TicketRules.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise PublishRefused(f"{field}: {first['msg']}") from err


async def publish(session: AsyncSession, rules: TicketRules, *, published_by: str) -> PublishedPolicy:
    """Store `rules` as the newest version. Its version name must be new."""
    if rules.version in policy.RELEASED or rules.version.startswith(policy.CANDIDATE_PREFIX):
        raise PublishRefused(
            f"version: {rules.version!r} is a released version; give the document a new one."
        )
    if await session.get(PublishedPolicy, rules.version) is not None:
        raise PublishRefused(
            f"version: {rules.version!r} is already published, and a version never changes; give the "
            "document a new one."
        )
    if len(rules.version) > VERSION_LENGTH:
        raise PublishRefused(
            f"version: at most {VERSION_LENGTH} characters; give the document a shorter one."
        )
    row = PublishedPolicy(
        version=rules.version,
        document=rules.model_dump_json(),
        fingerprint=rules.fingerprint(),
        published_by=published_by,
        published_at=utcnow(),
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        # Another publish of the same version won the race.
        await session.rollback()
        raise PublishRefused(
            f"version: {rules.version!r} is already published; give the document a new one."
        ) from None
    return row


async def published(session: AsyncSession) -> list[PublishedPolicy]:
    """Every published version, oldest first."""
    rows = await session.scalars(
        select(PublishedPolicy).order_by(PublishedPolicy.published_at, PublishedPolicy.version)
    )
    return list(rows)


async def install_published(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessionmaker() as session:
        return await install_from(session)


async def install_from(session: AsyncSession) -> str | None:
    """Register every published version this process does not know yet, and make the newest
    the current one. Returns the current published version (None: the build's own)."""
    rows = await published(session)
    known = policy.registered()
    for row in rows:
        if row.version not in known:
            policy.register_published(TicketRules.model_validate_json(row.document), row.fingerprint)
    newest = rows[-1].version if rows else None
    policy.set_current(newest)
    return newest


async def refresh(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """install_published; a database that does not answer, or a row that fails its
    fingerprint, is logged (the process runs on with what it has) rather than raised."""
    try:
        await install_published(sessionmaker)
    except (SQLAlchemyError, OSError, policy.PolicyMismatch, ValidationError) as err:
        log.warning("published policies not loaded (%s: %s)", type(err).__name__, err)


async def keep_installed(
    sessionmaker: async_sessionmaker[AsyncSession], every: float, stop: asyncio.Event | None = None
) -> None:
    """refresh every `every` seconds until `stop` (the caller refreshes once before it serves)."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            await refresh(sessionmaker)
