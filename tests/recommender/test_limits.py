"""Rate limits and the daily quota: 429 with Retry-After, per key, across processes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from recommender.keys import api_key_create
from recommender.limits import limits_check
from recommender.models import ApiUsage
from tests.conftest import REDIS_URL, REPO

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 3, 2, 12, 0, 5, tzinfo=dt.UTC)


def test_the_call_after_the_burst_gets_a_429_naming_the_limit(
    merchant, bare_key, settings, redis_cache
) -> None:
    # given a burst of 3 calls per 10 seconds, and a second key of the same merchant
    settings.LOOKALIKE_API_BURST_LIMIT = 3
    api = Client(headers={"X-Api-Key": bare_key.full_key})
    other = Client(headers={"X-Api-Key": api_key_create(merchant=merchant, name="2").full_key})
    url = reverse("api:products")
    with time_machine.travel(NOON, tick=False):
        # when
        statuses = [api.get(url).status_code for _ in range(3)]
        over = api.get(url)
        # then
        assert statuses == [200, 200, 200]
        assert over.status_code == 429
        assert over["Retry-After"] == "5"  # the window of 12:00:00..12:00:10 ends in 5 s
        assert over.json() == {
            "code": "burst_limit_exceeded",
            "message": "Over the burst limit of 3 calls per 10 seconds; retry in 5 s.",
            "errors": {},
            "limit": {"name": "burst", "calls": 3, "window_seconds": 10, "retry_after": 5},
        }
        # and another key is not affected
        assert other.get(url).status_code == 200
    # and the next window allows calls again
    with time_machine.travel(NOON + dt.timedelta(seconds=5), tick=False):
        assert api.get(url).status_code == 200


def test_a_keys_own_limit_overrides_the_default(merchant, settings) -> None:
    settings.LOOKALIKE_API_BURST_LIMIT = 100
    new = api_key_create(merchant=merchant, name="tight", burst_limit=1)
    client = Client(headers={"X-Api-Key": new.full_key})
    with time_machine.travel(NOON, tick=False):
        assert client.get(reverse("api:products")).status_code == 200
        assert client.get(reverse("api:products")).status_code == 429


def test_the_daily_quota_resets_the_next_day(merchant, redis_cache) -> None:
    # given a key with a quota of 2 calls a day
    new = api_key_create(merchant=merchant, name="quota", daily_quota=2)
    client = Client(headers={"X-Api-Key": new.full_key})
    url = reverse("api:products")
    late = dt.datetime(2026, 3, 2, 23, 59, 0, tzinfo=dt.UTC)
    with time_machine.travel(late, tick=False):
        assert [client.get(url).status_code for _ in range(2)] == [200, 200]
        # when the quota is spent
        over = client.get(url)
        # then
        assert over.status_code == 429 and over["Retry-After"] == "60"
        assert over.json()["code"] == "daily_quota_exceeded"
        assert "daily quota of 2 calls" in over.json()["message"]
    # and the next day (UTC) it is fresh
    with time_machine.travel(late + dt.timedelta(minutes=2), tick=False):
        assert client.get(url).status_code == 200
    # and usage counted both days, with the 429 as an error
    usage = {(u.day.isoformat(), u.calls, u.errors) for u in ApiUsage.objects.all()}
    assert usage == {("2026-03-02", 3, 1), ("2026-03-03", 1, 0)}


COUNTER_SCRIPT = """
import os, sys, time
import django
django.setup()
from recommender.limits import Limit, LimitExceeded, limits_check
key_id, calls, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
allowed = 0
for _ in range(calls):
    try:
        limits_check(key_id, [Limit("burst", 50, 3600)])
        allowed += 1
    except LimitExceeded:
        pass
print(allowed)
"""


def test_limits_hold_across_two_processes_sharing_redis(redis_cache) -> None:
    # given two processes with the production cache setting, on the same Redis
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOOKALIKE_CACHE_URL": REDIS_URL,
        "LOOKALIKE_CACHE_PREFIX": redis_cache,
    }
    start = time.time() + 3  # both start counting together, once Django is set up
    # when each makes 40 calls with the same key against a limit of 50
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER_SCRIPT, "424242", "40", str(start)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    allowed = [int(p.communicate(timeout=60)[0].strip()) for p in processes]
    # then exactly 50 of the 80 were allowed, between them
    assert sum(allowed) == 50


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_call_refused_by_the_burst_limit_uses_no_daily_quota(merchant, request, backend):
    # given a burst of 1 call per 10 seconds and a quota of 3 calls a day
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    new = api_key_create(merchant=merchant, name="q", burst_limit=1, daily_quota=3)
    client = Client(headers={"X-Api-Key": new.full_key})
    url = reverse("api:products")

    def burst_of_three(offset: int) -> list[int]:
        with time_machine.travel(NOON + dt.timedelta(seconds=offset), tick=False):
            return [client.get(url).status_code for _ in range(3)]

    # when three windows each see one allowed call and two refused ones
    assert burst_of_three(0) == burst_of_three(10) == burst_of_three(20) == [200, 429, 429]
    # then the quota holds exactly the three allowed calls
    with time_machine.travel(NOON + dt.timedelta(seconds=30), tick=False):
        over = client.get(url)
    assert over.status_code == 429 and over.json()["code"] == "daily_quota_exceeded"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_counters_are_peeked_in_the_same_round_trip(merchant, request, backend) -> None:
    from django.core.cache import cache

    from recommender.limits import Limit

    if backend == "redis":
        request.getfixturevalue("redis_cache")
    limits = [Limit("burst", 5, 10)]
    # a counter not set yet is None; one set (as INCR leaves it) is its integer
    assert limits_check(1, limits, peek=("catalog-version", "other")) == [None, None]
    cache.set("catalog-version", 41, timeout=None)
    cache.incr("catalog-version")
    assert limits_check(1, limits, peek=("catalog-version",)) == [42]
    assert limits_check(1, limits) == []


def test_calls_share_one_redis_client_and_count_as_before(merchant, redis_cache) -> None:
    from unittest import mock

    from django.core.cache.backends.redis import RedisCacheClient

    from recommender.limits import Limit, LimitExceeded

    # given Django's cache on Redis, which makes a new client for each of its own operations
    made = []
    real = RedisCacheClient.get_client

    def counted(self, *args, **kwargs):
        made.append(self)
        return real(self, *args, **kwargs)

    limits = [Limit("burst", 3, 60)]
    with mock.patch.object(RedisCacheClient, "get_client", counted):
        # when a key makes calls up to its limit and one more
        for _ in range(3):
            limits_check(7, limits, now=1_000.0)
        with pytest.raises(LimitExceeded):
            limits_check(7, limits, now=1_000.0)
    # then the limits made one client for all of them, and counted every call
    assert len(made) == 1


def test_counters_on_redis_expire_a_minute_after_their_window(merchant, redis_cache) -> None:
    import redis

    from recommender.limits import Limit

    # given a burst window of 10 s and a daily one
    limits = [Limit("burst", 5, 10), Limit("daily", 100, 86_400)]
    # when a call is counted
    limits_check(3, limits, now=1_000.0)
    # then each counter holds the call and expires when its window is over (and a minute)
    client = redis.Redis.from_url(REDIS_URL)
    keys = sorted(client.scan_iter(match=f"{redis_cache}:*api-limit:3:*"))
    assert [int(client.get(key)) for key in keys] == [1, 1]
    assert sorted(client.ttl(key) for key in keys) == [70, 86_460]


def test_limits_count_on_after_redis_forgets_the_script(merchant, redis_cache) -> None:
    import redis

    from recommender.limits import Limit, LimitExceeded

    # given a key that made a call, counted by the script Redis then knows by its SHA1
    limits = [Limit("burst", 2, 60)]
    limits_check(9, limits, now=1_000.0)
    # when Redis forgets its scripts (a restart, a failover, SCRIPT FLUSH)
    redis.Redis.from_url(REDIS_URL).script_flush()
    # then the next calls send it again and count on from where the counter was
    limits_check(9, limits, now=1_000.0)
    with pytest.raises(LimitExceeded):
        limits_check(9, limits, now=1_000.0)
