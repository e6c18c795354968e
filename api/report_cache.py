"""A short-lived cache of report answers (issue 17 §5): the same report, for the same reach
and parameters, is computed once per `report_cache_seconds` however often it is asked for.

Keys name the report, the caller's reach (the scope its rows are filtered by, never the key
itself: two keys with the same reach share an answer) and the parameters. Concurrent asks for
a key being computed wait for that one computation. The cache is bounded: past `max_entries`
the oldest entry is dropped. A failed computation is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from store import sla_report, uptime_report
from workflows.permissions import TicketScope

T = TypeVar("T")

MAX_ENTRIES = 256


class ReportCache:
    def __init__(
        self,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.max_entries = max_entries
        self.computed = 0
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if self.ttl_seconds <= 0:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry[0] < self.ttl_seconds:
            return cast(T, entry[1])
        pending = self._pending.get(key)
        if pending is not None:
            return cast(T, await asyncio.shield(pending))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.computed += 1
            value = await compute()
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved here, so an unawaited failure is not reported
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(value)
        self._entries.pop(key, None)
        self._entries[key] = (self.clock(), value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value


def report_cache(request: Request) -> ReportCache:
    """The app's report cache, made from its settings on first use."""
    cache: ReportCache | None = getattr(request.app.state, "report_cache", None)
    if cache is None:
        cache = request.app.state.report_cache = ReportCache(request.app.state.settings.report_cache_seconds)
    return cache


# --- The reports, cached: the API's /reports and the console's reports page share these --------


async def sla_groups(
    request: Request,
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    group_by: sla_report.ReportGroupBy,
    scope: TicketScope,
) -> list[sla_report.SlaGroup]:
    async def compute() -> list[sla_report.SlaGroup]:
        return await sla_report.sla_report(
            session=session, start=start, end=end, group_by=group_by, scope=scope
        )

    key = ("sla", scope, start, end, group_by.value)
    return await report_cache(request).get_or_compute(key, compute)


async def sla_chart(
    request: Request, *, session: AsyncSession, start: datetime, end: datetime, scope: TicketScope
) -> bytes:
    """The SLA chart's SVG; drawing it is CPU work, done off the event loop."""

    async def compute() -> bytes:
        weeks = await sla_report.sla_weeks(session=session, start=start, end=end, scope=scope)
        title = f"First-response SLA, {start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC)"
        return await run_in_threadpool(sla_report.render_sla_chart, weeks, title=title)

    return await report_cache(request).get_or_compute(("sla_chart", scope, start, end), compute)


async def uptime_rows(
    request: Request,
    *,
    session: AsyncSession,
    month: str,
    customer_id: str | None,
    scope: TicketScope,
) -> list[uptime_report.UptimeRow]:
    async def compute() -> list[uptime_report.UptimeRow]:
        return await uptime_report.uptime_report(
            session=session, month=month, now=datetime.now(UTC), customer_id=customer_id, scope=scope
        )

    key = ("uptime", scope, month, customer_id)
    return await report_cache(request).get_or_compute(key, compute)
