"""API usage: calls per key, day (UTC) and endpoint, with error counts; and its chart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from recommender.models import ApiKey, ApiUsage
from shop.models import Merchant


def usage_record(api_key_id: int, endpoint: str, *, failed: bool) -> None:
    """Count one call (and one error if it failed) for today."""
    day = timezone.now().date()
    rows = ApiUsage.objects.filter(api_key_id=api_key_id, day=day, endpoint=endpoint)
    errors = F("errors") + 1 if failed else F("errors")
    if rows.update(calls=F("calls") + 1, errors=errors):
        return
    try:
        with transaction.atomic():
            ApiUsage.objects.create(
                api_key_id=api_key_id, day=day, endpoint=endpoint, calls=1, errors=int(failed)
            )
    except IntegrityError:
        # Another process created today's row first: count on it.
        rows.update(calls=F("calls") + 1, errors=errors)


@dataclass(frozen=True)
class UsageDay:
    day: dt.date
    calls: int
    errors: int


def usage_days(
    merchant: Merchant, *, days: int = 30, api_key: ApiKey | None = None
) -> list[UsageDay]:
    """Calls and errors per day over the last `days` days (today included), zeros filled in."""
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
