"""API usage: calls per key, day (UTC) and endpoint, with error counts; and its chart.

A write per call would cost more than the call itself on SQLite (a commit is an fsync), so each
process adds up its calls in memory and writes them every LOOKALIKE_API_USAGE_FLUSH_SECONDS (and
at exit, and before it reads usage). 0 writes every call at once.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from recommender.models import ApiKey, ApiUsage
from shop.models import Merchant

logger = logging.getLogger(__name__)

_pending: dict[tuple[int, dt.date, str], list[int]] = {}
_lock = threading.Lock()
_flusher_pid: int | None = None


def usage_record(api_key_id: int, endpoint: str, *, failed: bool) -> None:
    """Count one call (and one error if it failed) for today."""
    day = timezone.now().date()
    if settings.LOOKALIKE_API_USAGE_FLUSH_SECONDS == 0:
        _add(api_key_id, day, endpoint, 1, int(failed))
        return
    with _lock:
        counts = _pending.setdefault((api_key_id, day, endpoint), [0, 0])
        counts[0] += 1
        counts[1] += int(failed)
    _start_flusher()


def usage_flush() -> None:
    """Write this process's counted calls to the database."""
    with _lock:
        pending = dict(_pending)
        _pending.clear()
    for (api_key_id, day, endpoint), (calls, errors) in pending.items():
        _add(api_key_id, day, endpoint, calls, errors)


def _add(api_key_id: int, day: dt.date, endpoint: str, calls: int, errors: int) -> None:
    rows = ApiUsage.objects.filter(api_key_id=api_key_id, day=day, endpoint=endpoint)
    if rows.update(calls=F("calls") + calls, errors=F("errors") + errors):
        return
    try:
        with transaction.atomic():
            ApiUsage.objects.create(
                api_key_id=api_key_id, day=day, endpoint=endpoint, calls=calls, errors=errors
            )
    except IntegrityError:
        # Another process created the row first (count on it), or the key was deleted meanwhile.
        rows.update(calls=F("calls") + calls, errors=F("errors") + errors)


def _start_flusher() -> None:
    # One daemon thread per process (a forked worker starts its own).
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="api-usage-flush", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(settings.LOOKALIKE_API_USAGE_FLUSH_SECONDS or 1)
        try:
            close_old_connections()
            usage_flush()
        except Exception:
            logger.exception("Could not write API usage; it is counted again at the next flush")
        finally:
            connection.close()


atexit.register(lambda: _pending and usage_flush())


@dataclass(frozen=True)
class UsageDay:
    day: dt.date
    calls: int
    errors: int


def usage_days(
    merchant: Merchant, *, days: int = 30, api_key: ApiKey | None = None
) -> list[UsageDay]:
    """Calls and errors per day over the last `days` days (today included), zeros filled in."""
    usage_flush()
    today = timezone.now().date()
    first = today - dt.timedelta(days=days - 1)
    rows = ApiUsage.objects.filter(api_key__merchant=merchant, day__gte=first)
    if api_key is not None:
        rows = rows.filter(api_key=api_key)
    totals = {
        row["day"]: row
        for row in rows.values("day").annotate(calls=Sum("calls"), errors=Sum("errors"))
    }
    return [
        UsageDay(day, totals.get(day, {}).get("calls", 0), totals.get(day, {}).get("errors", 0))
        for day in (first + dt.timedelta(days=n) for n in range(days))
    ]


def usage_rows(merchant: Merchant, *, days: int = 30) -> list[dict]:
    """Per key, day and endpoint: the rows behind the chart, newest day first."""
    usage_flush()
    first = timezone.now().date() - dt.timedelta(days=days - 1)
    rows = (
        ApiUsage.objects.filter(api_key__merchant=merchant, day__gte=first)
        .select_related("api_key")
        .order_by("-day", "api_key__name", "endpoint")
    )
    return [
        {
            "day": row.day.isoformat(),
            "key": f"lk_{row.api_key.prefix}",
            "key_name": row.api_key.name,
            "endpoint": row.endpoint,
            "calls": row.calls,
            "errors": row.errors,
        }
        for row in rows
    ]


def usage_key_rows(api_key: ApiKey, *, days: int = 30) -> list[dict]:
    """One key's calls and errors per day and endpoint, newest day first."""
    usage_flush()
    first = timezone.now().date() - dt.timedelta(days=days - 1)
    rows = ApiUsage.objects.filter(api_key=api_key, day__gte=first).order_by("-day", "endpoint")
    return list(rows.values("day", "endpoint", "calls", "errors"))


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    error_y: float
    error_height: float
    day: dt.date
    calls: int
    errors: int


def chart_bars(days: list[UsageDay], *, width: int = 720, height: int = 200) -> dict:
    """Geometry of a stacked bar chart (successful calls over errors), for an inline SVG."""
    top = max((d.calls for d in days), default=0) or 1
    step = width / max(len(days), 1)
    scale = (height - 20) / top
    bars = []
    for n, d in enumerate(days):
        error_height = d.errors * scale
        ok_height = (d.calls - d.errors) * scale
        bars.append(
            Bar(
                x=round(n * step + 1, 1),
                width=round(max(step - 2, 1), 1),
                ok_y=round(height - error_height - ok_height, 1),
                ok_height=round(ok_height, 1),
                error_y=round(height - error_height, 1),
                error_height=round(error_height, 1),
                day=d.day,
                calls=d.calls,
                errors=d.errors,
            )
        )
    return {"bars": bars, "width": width, "height": height, "top": top}
