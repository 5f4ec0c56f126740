"""Fixtures for tests that need the real broker: Redis on this machine and a Celery worker."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app

REDIS_DB = 5
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
# Every key this test session puts in Redis carries its own prefix, so two test runs on one
# machine (or a real deployment sharing the Redis) never take each other's tasks.
KEY_PREFIX = f"lookalike-test-{os.getpid()}:"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The machine's Redis; started if it is down (the pipeline tests never skip)."""
    if not redis_up():
        subprocess.run(REDIS_START, check=True)
        for _ in range(50):
            if redis_up():
                break
            time.sleep(0.1)
    assert redis_up(), "Redis is not running on 127.0.0.1:6379 and could not be started"
    import redis

    client = redis.Redis.from_url(BROKER)
    for key in client.scan_iter("lookalike-test-*"):
        # Only keys of test runs that are over (their process is gone).
        pid = int(key.decode().split("-")[2].split(":")[0])
        if not os.path.exists(f"/proc/{pid}"):
            client.delete(key)
    return BROKER


@pytest.fixture
def broker(redis_server: str, settings) -> Iterator[str]:
    """Tasks go through Redis instead of running in-process."""
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {k: app.conf[k] for k in keys}
    app.conf.update(
        broker_url=redis_server,
        task_always_eager=False,
        broker_transport_options={
            **saved["broker_transport_options"],
            "global_keyprefix": KEY_PREFIX,
        },
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.LOOKALIKE_INDEX_CHECK_INTERVAL = 0.2
    _drop_connection_pools()
    yield redis_server
    app.conf.update(saved)
    _drop_connection_pools()


def _drop_connection_pools() -> None:
    # The app keeps the pools it took for the broker URL it had then (in-process mode
    # falls back to a local AMQP URL); forget them so the next send takes the pools
    # kombu keeps for the current URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def worker(broker) -> Iterator[None]:
    """A real Celery worker (in a thread) consuming both queues from Redis."""
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=["default", "embedding"],
        shutdown_timeout=30,
    ):
        yield
