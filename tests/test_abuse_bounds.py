"""Abuse is bounded (issue 17 §5, §6): per-key rate limits with 429 and recovery, the report
and /metrics caches, the bounds of GET /sla/deadline, the per-field text limits, and log lines
that user text cannot forge. Comment spam and continue-as-new: tests/test_workflow_durability.py
(`test_a_long_ticket_continues_as_new_without_losing_state`, 30 comments on one ticket)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.console.session import SESSION_COOKIE
from api.errors import PROBLEM_MEDIA_TYPE
from api.metrics import ReadModelScraper
from api.rate_limit import Rate, RateLimits, TokenBucket
from api.report_cache import ReportCache
from runtime.telemetry import TextLogFormatter, escape_controls
from store.console_sessions import close_session, key_of_session, open_session
from store.demo_catalog import seed_demo_catalog
from store.keys import live_key_for_secret, seed_demo_keys
from tests.fixtures_api import Stack, console_session_id, sqlite_stack
from tests.test_api_permissions import file_ticket, ticket_body, unchanged_proof
from workflows import entitlement

ADMIN, SUPPORT, CUSTOMER = "dev-admin", "dev-support", "dev-customer-acme"


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_of(stack: Stack) -> FastAPI:
    transport = stack.http._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app


@asynccontextmanager
async def bounded_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path, **configured: Any
) -> AsyncIterator[Stack]:
    async with sqlite_stack(dev_env, tmp_path / "bounded.db", **configured) as stack:
        yield stack


def assert_rate_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == str(retry_after)
    problem = response.json()
    assert problem["rule"] == "rate_limited" and problem["type"] == "urn:escalator:problem:rate_limited"
    assert problem["title"] == "Too Many Requests"
    assert f"Retry after {retry_after} s" in problem["detail"]


# --- The token bucket -------------------------------------------------------------------------


def test_a_token_bucket_refuses_past_its_burst_and_refills_with_its_clock() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(per_minute=30, burst=3), clock=clock)
    assert [bucket.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("k") == pytest.approx(2.0)  # 30 a minute: one token every 2 s
    assert bucket.take("other") == 0.0  # every key has its own bucket
    clock.now += 2
    assert bucket.take("k") == 0.0
    assert bucket.take("k") > 0
    clock.now += 3600  # a long pause refills to the burst, never past it
    assert [bucket.take("k") for _ in range(4)][-1] > 0


def test_the_bucket_table_forgets_the_least_recently_used_key_first() -> None:
    bucket = TokenBucket(Rate(per_minute=1, burst=1), clock=FakeClock(), max_keys=2)
    bucket.take("a"), bucket.take("b"), bucket.take("a"), bucket.take("c")
    assert list(bucket._buckets) == ["a", "c"]


# --- 429 and recovery, through the API and the console -----------------------------------------


async def test_a_key_over_its_write_limit_gets_a_429_with_retry_after_that_changes_nothing_then_recovers(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with bounded_stack(
        dev_env, tmp_path, rate_limit_writes_per_minute=60.0, rate_limit_writes_burst=2
    ) as stack:
        app, clock = app_of(stack), FakeClock()
        app.state.rate_limits = RateLimits(app.state.settings, clock=clock)
        admin = stack.as_(ADMIN)

        def new_key(name: str) -> dict[str, Any]:
            return {"name": name, "role": "support", "level": 1}

        for name in ("one", "two"):
            assert (await stack.http.post("/api-keys", json=new_key(name), headers=admin)).status_code == 201
        keys_before = (await stack.http.get("/api-keys", headers=admin)).json()
        refused = await stack.http.post("/api-keys", json=new_key("three"), headers=admin)
        assert_rate_limited(refused, retry_after=1)
        # Refused before the route ran: nothing was written. Reads are not limited.
        assert (await stack.http.get("/api-keys", headers=admin)).json() == keys_before
        # Another key has a bucket of its own.
        other = await stack.http.post("/tickets", json=ticket_body("acme"), headers=stack.as_(SUPPORT))
        assert other.status_code == 201, other.text
        # One second later (the Retry-After), the key has a token again.
        clock.now += 1
        assert (await stack.http.post("/api-keys", json=new_key("three"), headers=admin)).status_code == 201
        assert_rate_limited(await stack.http.post("/api-keys", json=new_key("four"), headers=admin), 1)


async def test_reports_and_the_console_have_limits_of_their_own(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with bounded_stack(
        dev_env,
        tmp_path,
        rate_limit_reports_per_minute=6.0,
        rate_limit_reports_burst=1,
        rate_limit_console_per_minute=12.0,
        rate_limit_console_burst=2,
    ) as stack:
        app, clock = app_of(stack), FakeClock()
        app.state.rate_limits = RateLimits(app.state.settings, clock=clock)
        report = "/reports/sla?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"
        support = stack.as_(SUPPORT)
        assert (await stack.http.get(report, headers=support)).status_code == 200
        assert_rate_limited(await stack.http.get(report, headers=support), retry_after=10)
        # The ticket list is a plain read: not limited.
        assert (await stack.http.get("/tickets", headers=support)).status_code == 200

        console = {"Cookie": f"{SESSION_COOKIE}={console_session_id(SUPPORT)}"}
        assert [(await stack.http.get("/console", headers=console)).status_code for _ in range(2)] == [
            200,
            200,
        ]
        assert_rate_limited(await stack.http.get("/console", headers=console), retry_after=5)
        # Signing in again as that key spends the same tokens: it cannot fill the sessions table.
        async with httpx.AsyncClient(transport=stack.http._transport, base_url="http://api") as browser:
            page = await browser.get("/console/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
            assert token is not None
            signing_in = {"api_key": SUPPORT, "csrf_token": token.group(1), "next": "/console"}
            assert_rate_limited(await browser.post("/console/sign-in", data=signing_in), retry_after=5)
        clock.now += 10
        assert (await stack.http.get("/console", headers=console)).status_code == 200
        assert (await stack.http.get(report, headers=support)).status_code == 200


# --- Caches: reports, the SLA chart, /metrics --------------------------------------------------


async def test_a_report_is_computed_once_per_reach_and_parameters_until_its_cache_time_ends(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with bounded_stack(dev_env, tmp_path, report_cache_seconds=30.0) as stack:
        app, clock = app_of(stack), FakeClock()
        cache = app.state.report_cache = ReportCache(30.0, clock=clock)
        period = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"
        for _ in range(3):
            assert (
                await stack.http.get(f"/reports/sla?{period}", headers=stack.as_(SUPPORT))
            ).status_code == 200
        assert cache.computed == 1
        # Another key with the same reach (all tickets) shares the answer; a customer's reach
        # and other parameters are computed apart.
        assert (await stack.http.get(f"/reports/sla?{period}", headers=stack.as_(ADMIN))).status_code == 200
        assert cache.computed == 1
        customer = await stack.http.get(f"/reports/sla?{period}", headers=stack.as_(CUSTOMER))
        assert customer.status_code == 200 and cache.computed == 2
        by_line = await stack.http.get(f"/reports/sla?{period}&group_by=line", headers=stack.as_(SUPPORT))
        assert by_line.status_code == 200 and cache.computed == 3
        for _ in range(2):
            chart = await stack.http.get(f"/reports/sla/chart?{period}", headers=stack.as_(SUPPORT))
            assert chart.status_code == 200 and chart.text.lstrip().startswith("<?xml")
        assert cache.computed == 4
        clock.now += 30
        assert (await stack.http.get(f"/reports/sla?{period}", headers=stack.as_(SUPPORT))).status_code == 200
        assert cache.computed == 5


async def test_concurrent_asks_for_one_report_compute_it_once() -> None:
    cache, calls = ReportCache(30.0, clock=FakeClock()), []
    release = asyncio.Event()

    async def compute() -> str:
        calls.append(1)
        await release.wait()
        return "report"

    asks = [asyncio.create_task(cache.get_or_compute(("sla", 1), compute)) for _ in range(5)]
    await asyncio.sleep(0)  # let every ask reach the cache before the computation ends
    release.set()
    assert await asyncio.gather(*asks) == ["report"] * 5 and len(calls) == 1


async def test_metrics_count_the_read_model_once_per_cache_period_however_many_scrape(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with bounded_stack(dev_env, tmp_path) as stack:
        clock = FakeClock()
        scraper = ReadModelScraper(stack.sessionmaker, cache_seconds=5.0, clock=clock)
        counts = await asyncio.gather(*(scraper.counts() for _ in range(20)))
        assert scraper.counted == 1 and all(c is counts[0] is not None for c in counts)
        clock.now += 4.9
        await scraper.counts()
        assert scraper.counted == 1
        clock.now += 0.2
        await asyncio.gather(*(scraper.counts() for _ in range(5)))
        assert scraper.counted == 2
        app_of(stack).state.read_model_scraper = scraper
        scraped = await stack.http.get("/metrics")
        assert scraped.status_code == 200 and "escalator_read_model_up 1.0" in scraped.text


# --- GET /sla/deadline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "rule", "field"),
    [
        ("submitted_at=1900-01-01T09:00:00Z&country=DE", "submitted_at_out_of_range", "submitted_at"),
        ("submitted_at=9999-06-01T09:00:00Z&country=DE", "submitted_at_out_of_range", "submitted_at"),
        ("submitted_at=2026-12-01T09:00:00Z&country=XX", "unknown_country", "country"),
        ("submitted_at=2026-12-01T09:00:00Z&country=de", "unknown_country", "country"),
    ],
    ids=["year-1900", "year-9999", "unknown-country", "lower-case"],
)
async def test_a_deadline_quote_takes_years_near_now_and_known_countries_only(
    module_stack: Stack, query: str, rule: str, field: str
) -> None:
    terms = "tier=premium&severity=2&timezone=Europe/Berlin"
    response = await module_stack.http.get(f"/sla/deadline?{terms}&{query}")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["rule"] == rule and problem["detail"].startswith(f"{field}:")


async def test_a_deadline_quote_within_the_window_still_answers(module_stack: Stack) -> None:
    submitted = (datetime.now(UTC) + timedelta(days=365 * 9)).strftime("%Y-%m-%dT09:00:00Z")
    terms = "tier=premium&severity=2&timezone=Europe/Berlin&country=DE"
    response = await module_stack.http.get(f"/sla/deadline?{terms}&submitted_at={submitted}")
    assert response.status_code == 200, response.text


def test_the_holiday_caches_are_bounded() -> None:
    for cached in (entitlement._public_holidays, entitlement._subdivisions_of):
        assert cached.cache_info().maxsize == entitlement.HOLIDAY_CACHE_SIZE


# --- Per-field text limits -----------------------------------------------------------------------


async def test_each_text_field_has_a_limit_and_an_over_long_one_changes_nothing(module_stack: Stack) -> None:
    stack = module_stack
    long_description = ticket_body("acme") | {"description": "x" * 20_001}
    refused = await stack.http.post("/tickets", json=long_description, headers=stack.as_(SUPPORT))
    assert refused.status_code == 422 and "description" in refused.text
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)
    comment = {"body": "x" * 10_001, "public": False}
    too_long = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json=comment, headers=stack.as_(SUPPORT)
    )
    assert too_long.status_code == 422 and "body" in too_long.text
    assert await unchanged_proof(stack, ticket_id) == before


# --- Log lines --------------------------------------------------------------------------------------


def test_a_title_with_a_newline_cannot_forge_a_text_log_line() -> None:
    title = "Login down\n2026-12-06 10:00:00,000 INFO api: ticket closed by admin\r\x1b[2K\u2028"
    record = logging.LogRecord("api", logging.INFO, __file__, 1, "filed %r: %s", ("t-1", title), None)
    line = TextLogFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert line.endswith(
        "filed 't-1': Login down\\n2026-12-06 10:00:00,000 INFO api: ticket closed by admin\\r\\x1b[2K\\u2028"
    )
    # The record itself is left as it was, for any other handler.
    assert record.getMessage().endswith(title)


def test_a_traceback_follows_its_record_indented_so_no_line_of_it_looks_like_a_record() -> None:
    try:
        raise ValueError("bad title\n2026-12-06 10:00:00,000 INFO forged")
    except ValueError:
        record = logging.LogRecord("api", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    first, *rest = TextLogFormatter().format(record).split("\n")
    assert first.endswith("ERROR api: failed") and rest
    assert all(line.startswith("  ") for line in rest)


def test_escape_controls_keeps_printable_text_as_it_is() -> None:
    assert escape_controls("Zürich, 東京 ✓ tab\there") == "Zürich, 東京 ✓ tab\\there"


# --- The console session store, on every database backend ------------------------------------


async def test_a_console_session_stores_only_a_hash_and_ends_at_sign_out_expiry_or_revocation(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await seed_demo_catalog(session=session)
        await seed_demo_keys(session=session)
        key = await live_key_for_secret(session, SUPPORT)
        assert key is not None
        now = datetime.now(UTC)
        session_id = await open_session(session=session, key_id=key.id, lifetime=timedelta(hours=12), now=now)
        stale = await open_session(session=session, key_id=key.id, lifetime=timedelta(hours=1), now=now)
    async with sessionmaker() as session:
        rows = [tuple(row) for row in await session.execute(text("SELECT * FROM console_sessions"))]
        assert len(rows) == 2 and all(
            session_id not in str(value) and SUPPORT not in str(value) for row in rows for value in row
        )
        found = await key_of_session(session=session, session_id=session_id)
        assert found is not None and found.id == key.id and found.principal.name == key.name
        assert await key_of_session(session=session, session_id="not-a-session") is None
        # Past its expiry a session signs nobody in, and the next sign-in sweeps it away.
        assert await key_of_session(session=session, session_id=stale, now=now + timedelta(hours=2)) is None
        await open_session(
            session=session, key_id=key.id, lifetime=timedelta(hours=1), now=now + timedelta(hours=2)
        )
        assert await session.scalar(text("SELECT count(*) FROM console_sessions")) == 2
        await close_session(session=session, session_id=session_id)
        assert await key_of_session(session=session, session_id=session_id) is None
