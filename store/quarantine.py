"""Read-model writes the database refused on their data, set aside instead of retried for ever.

`data_error_kind` tells a write that can never succeed (its data: a time with no UTC
equivalent, a number out of range, a value or constraint the database refuses) from one that
may succeed later (the database is away, locked, restarting, or the schema is not there yet):
only the first kind is quarantined; everything else is retried, as before.
"""

from __future__ import annotations

import json
from typing import Any, Final

from sqlalchemy import exc, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import QuarantinedRecord, dialect_insert

# What a value raises on its way to the database, before the database sees it: a time with no
# UTC equivalent (OverflowError), a number SQLite cannot hold, a value of the wrong type.
VALUE_ERRORS: Final = (OverflowError, ValueError, TypeError)
# SQLSTATE classes (PostgreSQL, through asyncpg): 22 data exception, 23 integrity constraint.
DATA_SQLSTATE_CLASSES: Final = {"22": "data", "23": "integrity"}
ERROR_TEXT_LIMIT: Final = 2000


def _sqlstate(error: exc.DBAPIError) -> str | None:
    for source in (error.orig, getattr(error.orig, "__cause__", None)):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def data_error_kind(error: BaseException) -> str | None:
    """`overflow`, `data` or `integrity` when `error` says the write's own data is at fault;
    None when a retry may succeed (it is then retried)."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return None
        code = _sqlstate(error)
        if code is not None:
            return DATA_SQLSTATE_CLASSES.get(code[:2])
        # SQLite (no SQLSTATE): its DataError and IntegrityError are the data's fault; an
        # OperationalError (locked, no such table, disk I/O) is not.
        if isinstance(error, exc.IntegrityError):
            return "integrity"
        if isinstance(error, exc.DataError):
            return "data"
        return None
    if isinstance(error, exc.StatementError):
        # A bind parameter failed to convert before the statement reached the database.
        return _value_error_kind(error.orig)
    return _value_error_kind(error)


def _value_error_kind(error: BaseException | None) -> str | None:
    if isinstance(error, OverflowError):
        return "overflow"
    if isinstance(error, VALUE_ERRORS):
        return "data"
    return None


def describe_error(error: BaseException) -> str:
    """The error's own words without the statement or its parameters (customer text), escaped
    to printable ASCII so that no database refuses it and no log line is forged with it."""
    cause = error.orig if isinstance(error, exc.StatementError) and error.orig is not None else error
    words = f"{type(cause).__name__}: {cause}"
    return words.encode("unicode_escape").decode("ascii")[:ERROR_TEXT_LIMIT]


async def quarantine_record(
    *,
    session: AsyncSession,
    ticket_id: str,
    run_id: str,
    activity_id: str,
    error_kind: str,
    error: str,
    record: dict[str, Any],
) -> None:
    """Keep a refused record with its error; the same activity's retry keeps it once."""
    values = {
        "ticket_id": ticket_id,
        "run_id": run_id,
        "activity_id": activity_id,
        "error_kind": error_kind,
        "error": error,
        # ASCII JSON: no database refuses it (PostgreSQL's text takes no NUL, JSONB no \u0000).
        "record": json.dumps(record, ensure_ascii=True, sort_keys=True),
    }
    stmt = dialect_insert(session, QuarantinedRecord).values(values)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["run_id", "activity_id"]))


async def quarantined_records(*, session: AsyncSession, ticket_id: str) -> list[QuarantinedRecord]:
    """A ticket's quarantined records, oldest first."""
    rows = await session.scalars(
        select(QuarantinedRecord)
        .where(QuarantinedRecord.ticket_id == ticket_id)
        .order_by(QuarantinedRecord.id)
    )
    return list(rows)
