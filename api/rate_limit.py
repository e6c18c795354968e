"""Per-key rate limits (issue 17 §5): a token bucket per API key and kind of request.

Three kinds are limited, each with its own bucket per key: writes (every POST, PUT, PATCH and
DELETE made with a key), reports (GET /reports/...) and the console (every page, fragment and
form of a signed-in person). Reads of a ticket or a list are not: they are cheap and indexed.
A bucket holds `burst` tokens and refills at `per_minute` tokens a minute; a request takes one,
and an empty bucket answers 429 with `Retry-After`, the whole seconds until a token is back.
A limit of 0 per minute turns that kind's limit off.

The buckets live in this process (one API replica each): a limit is per replica, which bounds
what one key can cost each of them. An API request's bucket is keyed by the SHA-256 of its
secret (what the database stores), the console's by the key's id, so a bucket never holds a
secret. The table of buckets is bounded: the least recently used key is forgotten first, which
at worst gives that key a full bucket again.

Why not a library: slowapi (and `limits` under it) is not a dependency, keys limits by client
address through route decorators, and would add a dependency for one bucket; pyrate-limiter is
in the environment only through schemathesis (dev), and neither lets a test drive the clock as
simply. A bucket is twenty lines, and tests/test_abuse_bounds.py drives it with its own clock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from api.errors import ApiError
from runtime.settings import Settings
from store.keys import hash_secret

# Keys whose buckets are kept; one more forgets the least recently used.
MAX_BUCKETS = 10_000
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RateKind(StrEnum):
    WRITE = "write"
    REPORT = "report"
    CONSOLE = "console"


@dataclass(frozen=True)
class Rate:
    per_minute: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 and self.burst > 0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """Token buckets by key for one rate; `clock` is monotonic seconds (tests pass their own)."""

    def __init__(
        self, rate: Rate, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_BUCKETS
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 if there was one, else the seconds until there is."""
        now = self.clock()
        per_second = self.rate.per_minute / 60
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.rate.burst), now)
        bucket.tokens = min(float(self.rate.burst), bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / per_second


class RateLimits:
    """One bucket table per kind of request, from the settings."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        rates = {
            RateKind.WRITE: Rate(settings.rate_limit_writes_per_minute, settings.rate_limit_writes_burst),
            RateKind.REPORT: Rate(settings.rate_limit_reports_per_minute, settings.rate_limit_reports_burst),
            RateKind.CONSOLE: Rate(settings.rate_limit_console_per_minute, settings.rate_limit_console_burst),
        }
        self.buckets = {kind: TokenBucket(rate, clock=clock) for kind, rate in rates.items() if rate.enabled}

    def check(self, kind: RateKind, key: str) -> None:
        """Raise a 429 problem if `key` (a key's hash or id) has used up its `kind` of requests."""
        bucket = self.buckets.get(kind)
        if bucket is None:
            return
        wait = bucket.take(key)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429,
                f"This key has made more {kind.value} requests than its limit allows "
                f"({bucket.rate.per_minute:g} a minute, in bursts of up to {bucket.rate.burst}). "
                f"Retry after {retry_after} s; an admin can raise the limit with "
                f"ESCALATOR_RATE_LIMIT_{kind.value.upper()}S_PER_MINUTE.",
                rule="rate_limited",
                headers={"Retry-After": str(retry_after)},
            )


def limits_of(request: Request) -> RateLimits:
    """The app's rate limits, made from its settings on first use."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        limits = request.app.state.rate_limits = RateLimits(request.app.state.settings)
    return limits


def kind_of_api_request(request: Request) -> RateKind | None:
    """Which limit an API request (made with a key) counts against, if any."""
    if request.method in WRITE_METHODS:
        return RateKind.WRITE
    if request.url.path.startswith("/reports"):
        return RateKind.REPORT
    return None


def check_api_request(request: Request, secret: str) -> None:
    kind = kind_of_api_request(request)
    if kind is not None:
        limits_of(request).check(kind, hash_secret(secret))


def check_console_request(request: Request, key_id: str) -> None:
    limits_of(request).check(RateKind.CONSOLE, key_id)
