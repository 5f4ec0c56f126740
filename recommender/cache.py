"""Short-lived caches of the partner API: similar-item answers and API keys.

A similar-items answer is cached under everything that decides it: the index version, the
key's catalog, the product, k, the filters, the aesthetics weight and the host the URLs are
built for. A new index version is therefore a new key, at once; product data (price, stock,
title, a product made inactive) may be served as it was for at most the cache's TTL
(LOOKALIKE_API_RESULT_CACHE_SECONDS).

Only answers worked out per call are cached (other parameters than the defaults, a product
whose row is not ranked): an answer ranked ahead (recommender.answers) is written faster than
it is looked up and kept, so those calls skip the cache (uniform traffic over 100,000 products
ran 79 % of the keyed no-op's rate through the cache, 86 % without it; docs/benchmarks.md).

Where answers live (LOOKALIKE_API_RESULT_CACHE): ``local`` keeps them in each web process
(an LRU, no round trip), ``shared`` in Django's cache (Redis in production: one miss per
answer for all processes, a round trip per hit), ``off`` computes every call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable

from django.conf import settings
from django.core.cache import cache as django_cache

RESULT_CACHE_MODES = ("local", "shared", "off")


class TtlLru:
    """A thread-safe LRU whose entries also expire `ttl` seconds after they were stored."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        """The live value stored under key, or None."""
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            # A clock set back must not keep an entry alive for ever.
            if not 0 <= now - stored_at < self.ttl:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: Hashable, value: object) -> None:
        """Store value under key, evicting the least recently used entry when full."""
        if self.size <= 0 or self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.time(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        """Forget key if it is stored."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_results: TtlLru | None = None
_keys: TtlLru | None = None
_setup_lock = threading.Lock()


def _local_results() -> TtlLru:
    global _results
    with _setup_lock:
        ttl, size = settings.LOOKALIKE_API_RESULT_CACHE_SECONDS, settings.LOOKALIKE_API_CACHE_SIZE
        if _results is None or (_results.ttl, _results.size) != (ttl, size):
            _results = TtlLru(size, ttl)
        return _results


def key_cache() -> TtlLru:
    """This process's API keys by prefix (LOOKALIKE_API_KEY_CACHE_SECONDS; 0: none)."""
    global _keys
    with _setup_lock:
        ttl = settings.LOOKALIKE_API_KEY_CACHE_SECONDS
        if _keys is None or _keys.ttl != ttl:
            _keys = TtlLru(10_000, ttl)
        return _keys


def result_cache_on() -> bool:
    """Whether similar-item answers are cached at all."""
    return (
        settings.LOOKALIKE_API_RESULT_CACHE != "off"
        and settings.LOOKALIKE_API_RESULT_CACHE_SECONDS > 0
    )


def result_get(key: tuple) -> bytes | None:
    """A cached answer's JSON bytes, or None (always None when the cache is off)."""
    if not result_cache_on():
        return None
    if settings.LOOKALIKE_API_RESULT_CACHE == "shared":
        return django_cache.get(_shared_key(key))
    return _local_results().get(key)


def result_set(key: tuple, body: bytes) -> None:
    """Cache an answer's JSON bytes for LOOKALIKE_API_RESULT_CACHE_SECONDS."""
    if not result_cache_on():
        return
    if settings.LOOKALIKE_API_RESULT_CACHE == "shared":
        django_cache.set(
            _shared_key(key), body, timeout=settings.LOOKALIKE_API_RESULT_CACHE_SECONDS
        )
    else:
        _local_results().set(key, body)


def _shared_key(key: tuple) -> str:
    # Memcached-safe and short: the parts may hold any characters (a SKU, a host).
    return "api-similar:" + hashlib.sha256(repr(key).encode()).hexdigest()


def caches_clear() -> None:
    """Empty this process's caches (tests; after settings change)."""
    for lru in (_results, _keys):
        if lru is not None:
            lru.clear()
