"""Per-key rate limits and daily quota, counted in Django's cache (Redis in production).

Fixed windows: a counter per key, limit and window start, incremented atomically (Redis INCR),
so the limits hold across every web process that shares the cache.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from recommender.models import ApiKey

DAY = 86_400


@dataclass(frozen=True)
class Limit:
    """At most `calls` calls per `window` seconds; windows start at multiples of `window`."""

    name: str
    calls: int
    window: int

    def describe(self) -> str:
        if self.name == "daily":
            return f"daily quota of {self.calls} calls (resets at 00:00 UTC)"
        return f"{self.name} limit of {self.calls} calls per {self.window} seconds"


class LimitExceeded(Exception):
    """A call over one of a key's limits; retry after `retry_after` seconds."""

    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(f"Over the {limit.describe()}; retry in {retry_after} s.")
        self.limit = limit
        self.retry_after = retry_after


def key_limits(api_key: ApiKey) -> list[Limit]:
    """A key's own limits, or the site defaults where it sets none; shortest window first."""
    return [
        Limit(
            "burst",
            api_key.burst_limit or settings.LOOKALIKE_API_BURST_LIMIT,
            settings.LOOKALIKE_API_BURST_WINDOW,
        ),
        Limit(
            "sustained",
            api_key.sustained_limit or settings.LOOKALIKE_API_SUSTAINED_LIMIT,
            settings.LOOKALIKE_API_SUSTAINED_WINDOW,
        ),
        Limit("daily", api_key.daily_quota or settings.LOOKALIKE_API_DAILY_QUOTA, DAY),
    ]


def limits_check(
    key_id: int, limits: list[Limit], now: float | None = None, *, peek: tuple[str, ...] = ()
) -> list[int | None]:
    """Count one call against each limit; raise LimitExceeded for the first one over.

    Returns the values of the integer counters named in `peek` (None where not set), read in
    the same round trip: the catalog version, for a similar-items call.
    """
    now = time.time() if now is None else now
    starts = [int(now // limit.window) * limit.window for limit in limits]
    counters = [
        (f"api-limit:{key_id}:{limit.name}:{limit.window}:{start}", limit.window)
        for limit, start in zip(limits, starts, strict=True)
    ]
    counts, peeked = _count_all(counters, peek)
    for n, (limit, start, count) in enumerate(zip(limits, starts, counts, strict=True)):
        if count > limit.calls:
            # A refused call does not use up the longer limits (the daily quota above all).
            for counter, _ in counters[n + 1 :]:
                cache.decr(counter)
            raise LimitExceeded(limit, max(1, math.ceil(start + limit.window - now)))
    return peeked


def _count_all(
    counters: list[tuple[str, int]], peek: tuple[str, ...]
) -> tuple[list[int], list[int | None]]:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        counts = [_count(counter, window) for counter, window in counters]
        return counts, [cache.get(name) for name in peek]
    # On Redis, every counter in one round trip: create with its expiry if new, then INCR.
    pipe = _redis_client(backend).pipeline(transaction=False)
    for counter, window in counters:
        key = backend.make_and_validate_key(counter)
        pipe.set(key, 0, ex=window + 60, nx=True)
        pipe.incr(key)
    for name in peek:
        pipe.get(backend.make_and_validate_key(name))
    replies = pipe.execute()
    # Django's Redis cache stores an integer as its digits (so that INCR works on it).
    peeked = [None if raw is None else int(raw) for raw in replies[2 * len(counters) :]]
    return replies[1 : 2 * len(counters) : 2], peeked


def _redis_client(backend: RedisCache):
    """A client of the backend's write pool, made once per backend.

    Django makes a new one for every operation, and a redis-py client builds its table of
    reply parsers as it is made: a tenth of a partner API call. A client is safe to share
    between threads (each command takes a connection from the pool), and the pool starts
    afresh in a forked process.
    """
    cache_client = backend._cache
    client = getattr(cache_client, "_lookalike_write_client", None)
    if client is None:
        client = cache_client._lookalike_write_client = cache_client.get_client(write=True)
    return client


def _count(counter: str, window: int) -> int:
    # incr() is atomic in Redis and in memory; it raises ValueError for a counter not yet there.
    # add() creates it for the window's first call unless another process just did.
    while True:
        try:
            return cache.incr(counter)
        except ValueError:
            if cache.add(counter, 1, timeout=window + 60):
                return 1
