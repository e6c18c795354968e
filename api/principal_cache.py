"""The principals of recently used API keys, so a request does not ask the database who is
calling (issue 18: intake without a database round trip on the hot path).

An entry lives `ESCALATOR_PRINCIPAL_CACHE_SECONDS` (5 s by default; 0 turns the cache off).
That is the bound on a revocation made elsewhere (another API replica, `escalator keys
revoke`): within it the revoked key is refused everywhere. A revocation through this process
(`DELETE /api-keys/{id}`) drops the key's entry at once, so this process refuses it on its
very next request. Only live keys are cached, keyed by the secret's hash (never the secret):
an unknown key is asked of the database every time, and a new key works at once. At most
`MAX_ENTRIES` keys, the least recently used forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from store.keys import ApiKeyPublic

MAX_ENTRIES: Final = 10_000


@dataclass(frozen=True)
class _Entry:
    key: ApiKeyPublic
    expires_at: float


class PrincipalCache:
    """Live keys by the hash of their secret, each for `ttl_seconds` of `clock` (monotonic
    seconds; tests pass a clock they advance)."""

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Keys revoked here, until an entry read before the revocation would have expired:
        # a request that read the key just before the revocation committed cannot cache it.
        self._revoked: dict[str, float] = {}

    def get(self, key_hash: str) -> ApiKeyPublic | None:
        """The cached live key for this secret's hash, unless it expired or was never cached."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if self._clock() >= entry.expires_at:
            del self._entries[key_hash]
            return None
        self._entries.move_to_end(key_hash)
        return entry.key

    def put(self, key_hash: str, key: ApiKeyPublic) -> None:
        now = self._clock()
        self._revoked = {key_id: until for key_id, until in self._revoked.items() if until > now}
        if self.ttl_seconds <= 0 or key.id in self._revoked:
            return
        self._entries[key_hash] = _Entry(key, now + self.ttl_seconds)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def forget_key(self, key_id: str) -> None:
        """Drop the key with this id (it was revoked here): refused from the next request on."""
        for key_hash in [h for h, entry in self._entries.items() if entry.key.id == key_id]:
            del self._entries[key_hash]
        if self.ttl_seconds > 0:
            self._revoked[key_id] = self._clock() + self.ttl_seconds
