"""`GET /metrics`: the API's Prometheus text (DESIGN.md 8; public, like /healthz).

From this process, counted as requests are answered:
- `escalator_http_requests_total{method, route, status}`: by route template, never the raw
  path, so no ticket id becomes a label;
- `escalator_intake_duration_seconds{status}`: how long `POST /tickets` took to answer;
- `escalator_refusals_total{rule, status}`: every problem+json answer, by its `rule`
  (api/errors.py counts each one it builds).

From the read model, counted at scrape time (and reused for `metrics_cache_seconds`):
- `escalator_open_tickets{tier, level}`: tickets neither resolved nor closed;
- `escalator_open_tickets_breached{tier, level, line}`: those with a breached SLA, by the line
  that breached it (connectsoft, or the partner's first line);
- `escalator_sla_events_total{kind}`: SLA warnings, breaches and overdue updates recorded;
- `escalator_open_tickets_indicative_past_due{tier}`: open tickets past an indicative time
  (a clock without an SLA: Basic, best effort), which is never a breach (DESIGN.md §4);
- `escalator_read_model_up`: 0 when the database did not answer; the read-model families are
  then left out and the rest is still served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.db import Ticket, TicketClockRecord, TicketEventRecord
from workflows.enums import CLOSED_STATES, ClockStatus, EventKind, OwningLine, Tier

log = logging.getLogger(__name__)

# Counters and histograms without their `_created` series (the process start, per series),
# which only double what a scrape sends.
disable_created_metrics()
# One registry per process for what the process counts; the read-model families are made
# afresh for each scrape, so two apps in one process (tests) never clash over them.
REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "escalator_http_requests",
    "HTTP requests answered, by method, route template (not the raw path) and status code.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
# Intake answers in milliseconds to tens of them (docs/benchmarks.md); a second or more means
# Temporal or the database is struggling.
INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INTAKE_SECONDS = Histogram(
    "escalator_intake_duration_seconds",
    "Time to answer POST /tickets, from the request's arrival to the end of the answer, by status.",
    ("status",),
    buckets=INTAKE_BUCKETS,
    registry=REGISTRY,
)
REFUSALS = Counter(
    "escalator_refusals",
    "Requests answered with a problem (application/problem+json), by the rule that refused "
    "them and the status code.",
    ("rule", "status"),
    registry=REGISTRY,
)

INTAKE_ROUTE = ("POST", "/tickets")
UNMATCHED_ROUTE = "unmatched"
# Any other method a client sends is counted as "other": labels stay a small, fixed set.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LEVELS = (1, 2, 3, 4)
SLA_EVENT_KINDS = (EventKind.SLA_WARNING, EventKind.SLA_BREACHED, EventKind.UPDATE_OVERDUE)
# A scrape waits this long for the read model before it answers without it.
READ_MODEL_TIMEOUT = 3.0


def count_refusal(*, rule: str, status: int) -> None:
    REFUSALS.labels(rule=rule, status=str(status)).inc()


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/tickets/{ticket_id}`), after routing."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestMetricsMiddleware:
    """Counts every HTTP answer by route template and status, and times intake."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception that escapes the app is answered 500 by Starlette outside this one.
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            route = route_template(scope)
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            if (method, route) == INTAKE_ROUTE:
                INTAKE_SECONDS.labels(status=str(status)).observe(time.perf_counter() - started)


# --- The read model, at scrape time -----------------------------------------------------------


@dataclass(frozen=True)
class ReadModelCounts:
    open_tickets: dict[tuple[str, int], int]
    breached: dict[tuple[str, int, str], int]
    sla_events: dict[str, int]
    indicative_past_due: dict[str, int] = field(default_factory=dict)


async def count_read_model(session: AsyncSession, now: datetime | None = None) -> ReadModelCounts:
    """Open tickets by tier and level, with their breaches, in one grouped query; the SLA
    warnings and breaches on record in another; and the open tickets past an indicative time
    (counted apart: never a breach, DESIGN.md §4) in a third."""
    open_rows = await session.execute(
        select(
            Ticket.tier,
            Ticket.level,
            func.count(),
            func.sum(case((Ticket.sla_breached, 1), else_=0)),
            func.sum(case((Ticket.partner_sla_breached, 1), else_=0)),
        )
        .where(Ticket.status.not_in([status.value for status in CLOSED_STATES]))
        .group_by(Ticket.tier, Ticket.level)
    )
    open_tickets: dict[tuple[str, int], int] = {}
    breached: dict[tuple[str, int, str], int] = {}
    for tier, level, count, connectsoft, partner in open_rows:
        open_tickets[(tier, level)] = count
        breached[(tier, level, OwningLine.CONNECTSOFT.value)] = connectsoft or 0
        breached[(tier, level, OwningLine.PARTNER.value)] = partner or 0
    event_rows = await session.execute(
        select(TicketEventRecord.kind, func.count())
        .where(TicketEventRecord.kind.in_([kind.value for kind in SLA_EVENT_KINDS]))
        .group_by(TicketEventRecord.kind)
    )
    past_rows = await session.execute(
        select(Ticket.tier, func.count(func.distinct(Ticket.ticket_id)))
        .join(TicketClockRecord, TicketClockRecord.ticket_id == Ticket.ticket_id)
        .where(
            Ticket.status.not_in([status.value for status in CLOSED_STATES]),
            TicketClockRecord.binding.is_(False),
            TicketClockRecord.status.in_([ClockStatus.RUNNING.value, ClockStatus.WARNED.value]),
            TicketClockRecord.due_at <= (now or datetime.now(UTC)),
        )
        .group_by(Ticket.tier)
    )
    return ReadModelCounts(
        open_tickets,
        breached,
        {kind: count for kind, count in event_rows},
        {tier: count for tier, count in past_rows},
    )


def read_model_families(counts: ReadModelCounts | None) -> Iterator[Metric]:
    """The read-model families; every tier, level, line and kind appears, at 0 if none, so a
    series never vanishes when its last ticket closes."""
    up = GaugeMetricFamily(
        "escalator_read_model_up",
        "1 if this scrape counted the read model, 0 if the database did not answer (its families "
        "are then left out).",
        value=0 if counts is None else 1,
    )
    yield up
    if counts is None:
        return
    open_tickets = GaugeMetricFamily(
        "escalator_open_tickets",
        "Open tickets (neither resolved nor closed) in the read model, by support tier and escalation level.",
        labels=("tier", "level"),
    )
    breached = GaugeMetricFamily(
        "escalator_open_tickets_breached",
        "Open tickets with a breached SLA in the read model, by tier, level and the line that "
        "breached it: connectsoft, or partner (the partner's first line).",
        labels=("tier", "level", "line"),
    )
    for tier in Tier:
        for level in LEVELS:
            open_tickets.add_metric([tier.value, str(level)], counts.open_tickets.get((tier.value, level), 0))
            for line in OwningLine:
                key = (tier.value, level, line.value)
                breached.add_metric([tier.value, str(level), line.value], counts.breached.get(key, 0))
    events = CounterMetricFamily(
        "escalator_sla_events",
        "SLA events recorded in the read model: sla_warning (a deadline is near), sla_breached "
        "and update_overdue (a periodic update is late).",
        labels=("kind",),
    )
    for kind in SLA_EVENT_KINDS:
        events.add_metric([kind.value], counts.sla_events.get(kind.value, 0))
    indicative = GaugeMetricFamily(
        "escalator_open_tickets_indicative_past_due",
        "Open tickets past an indicative response time (no SLA: Basic, best effort), by tier. "
        "Never a breach: these are not in escalator_open_tickets_breached.",
        labels=("tier",),
    )
    for tier in Tier:
        indicative.add_metric([tier.value], counts.indicative_past_due.get(tier.value, 0))
    yield open_tickets
    yield breached
    yield events
    yield indicative


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


@dataclass
class ReadModelScraper:
    """Counts the read model for a scrape, at most once per `cache_seconds`: scrapes within
    that time reuse the last counts, and concurrent scrapes wait on one lock, so no number of
    unauthenticated scrapers costs more than one count per period. A failed count is not
    kept (the next scrape tries again), but the lock still lets only one try at a time."""

    sessionmaker: async_sessionmaker[AsyncSession]
    cache_seconds: float
    clock: Callable[[], float] = time.monotonic
    counted: int = 0
    _counts: ReadModelCounts | None = None
    _counted_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _fresh(self) -> bool:
        return self.clock() - self._counted_at < self.cache_seconds

    async def counts(self) -> ReadModelCounts | None:
        if self._fresh():
            return self._counts
        async with self._lock:
            if self._fresh():  # another scrape counted while this one waited
                return self._counts
            self.counted += 1
            try:
                async with asyncio.timeout(READ_MODEL_TIMEOUT), self.sessionmaker() as session:
                    counts = await count_read_model(session)
            except Exception as err:  # any failure to count: serve the rest, say so in the log
                log.warning("GET /metrics without the read model: it did not answer (%s)", type(err).__name__)
                return None
            self._counts, self._counted_at = counts, self.clock()
            return counts


def exposition(counts: ReadModelCounts | None) -> bytes:
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Families(read_model_families(counts)))
    return generate_latest(REGISTRY) + generate_latest(scraped)


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text: requests, intake latency, refusals, and open tickets, breaches and
    warnings from the read model. No key needed."""
    scraper: ReadModelScraper | None = getattr(request.app.state, "read_model_scraper", None)
    if scraper is None:
        scraper = request.app.state.read_model_scraper = ReadModelScraper(
            request.app.state.sessionmaker, request.app.state.settings.metrics_cache_seconds
        )
    body = exposition(await scraper.counts())
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Count every request (outermost, so refusals by earlier middleware count too) and serve
    GET /metrics."""
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(router)
