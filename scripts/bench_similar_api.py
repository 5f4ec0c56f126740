"""Latency of the similar-items JSON endpoint over HTTP against a running shop.

Usage: python scripts/bench_similar_api.py [--url http://127.0.0.1:8000] [--calls 1000]
Product ids are read from the shop's database (same settings as the server).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def product_ids() -> list[int]:
    """Ids of active products in the shop's database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from shop.models import Product

    return list(Product.objects.filter(is_active=True).values_list("pk", flat=True))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    """Call the endpoint N times for random products; print p50/p90/p99 in ms."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--k", type=int, default=12)
    args = parser.parse_args()
    ids, rng = product_ids(), random.Random(0)
    timings = []
    for _ in tqdm(range(args.calls), desc="GET similar", unit="call"):
        url = f"{args.url}/api/v1/products/{rng.choice(ids)}/similar/?k={args.k}"
        started = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            response.read()
            assert response.status == 200, response.status
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"{args.calls} calls, k={args.k}: p50 {percentile(timings, 50):.1f} ms, "
        f"p90 {percentile(timings, 90):.1f} ms, p99 {percentile(timings, 99):.1f} ms, "
        f"mean {statistics.fmean(timings):.1f} ms"
    )


if __name__ == "__main__":
    main()
