"""Per-key rate limits and daily quota, counted in Django's cache (Redis in production).

Fixed windows: a counter per key, limit and window start, incremented atomically (on Redis,
every counter of a call in one Lua script), so the limits hold across every web process that
shares the cache.
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

    A call is counted against the limits in order up to the first one it is over: a refused
    call does not use up the longer limits (the daily quota above all). Returns the values of
    the integer counters named in `peek` (None where not set), read in the same round trip:
    the catalog version, for a similar-items call.
    """
    now = time.time() if now is None else now
    starts = [int(now // limit.window) * limit.window for limit in limits]
    counters = [
        (f"api-limit:{key_id}:{limit.name}:{limit.window}:{start}", limit.calls, limit.window)
        for limit, start in zip(limits, starts, strict=True)
    ]
    over, peeked = _count_all(counters, peek)
    if over is not None:
        limit, start = limits[over], starts[over]
        raise LimitExceeded(limit, max(1, math.ceil(start + limit.window - now)))
    return peeked


# KEYS: the counters, then the keys to peek at; ARGV: for each counter its limit and expiry.
# Returns the 1-based position of the first counter over its limit (0: none), then the peeked
# values (false, which reaches Python as None, where not set).
_COUNT_SCRIPT = """
local counters = #ARGV / 2
local over = 0
for i = 1, counters do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
  if count > tonumber(ARGV[2 * i - 1]) then
    over = i
    break
  end
end
local reply = {over}
for i = counters + 1, #KEYS do
  reply[#reply + 1] = redis.call('GET', KEYS[i])
end
return reply
"""


def _count_all(
    counters: list[tuple[str, int, int]], peek: tuple[str, ...]
) -> tuple[int | None, list[int | None]]:
    """Count up to the first counter over its limit: (its position or None, peeked values)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        for n, (counter, calls, window) in enumerate(counters):
            if _count(counter, window) > calls:
                return n, [cache.get(name) for name in peek]
        return None, [cache.get(name) for name in peek]
    # On Redis, one script: one command to write and one reply to read. A pipeline of SET NX
    # + INCR per counter was two fifths of a keyed no-op call under the profiler, most of it
    # redis-py packing and parsing seven commands.
    # (make_key: these names are ours, short and plain: no need of the memcached key checks.)
    keys = [backend.make_key(counter) for counter, _, _ in counters]
    keys += [backend.make_key(name) for name in peek]
    args = [value for _, calls, window in counters for value in (calls, window + 60)]
    over, *peeked = _count_script(backend)(keys=keys, args=args)
    # Django's Redis cache stores an integer as its digits (so that INCR works on it).
    return (over - 1 if over else None), [None if raw is None else int(raw) for raw in peeked]


def _count_script(backend: RedisCache):
    """The counting script, registered once per backend on its shared client (by SHA1: Redis
    is sent the script itself only when it does not know it yet)."""
    cache_client = backend._cache
    script = getattr(cache_client, "_lookalike_count_script", None)
    if script is None:
        script = _redis_client(backend).register_script(_COUNT_SCRIPT)
        cache_client._lookalike_count_script = script
    return script


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
