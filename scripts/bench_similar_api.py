"""Latency of the similar-items JSON endpoint over HTTP, with an API key or without.

Usage:
  python scripts/bench_similar_api.py [--url http://127.0.0.1:8000] [--calls 1000] [--key lk_...]
      against a running shop (with --key, or a server started with LOOKALIKE_API_KEYS_REQUIRED=0)
  python scripts/bench_similar_api.py --serve [--calls 1000]
      starts one runserver process per mode on spare ports and measures both: with a key
      (key check, rate limits counted in Redis, usage counted) and without (keys switched off)
Product ids are read from the shop's database (same settings as the server).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    """Django with the shop's settings, for reading ids and creating a key."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def product_ids() -> list[int]:
    """Ids of active products in the shop's database."""
    setup_django()
    from shop.models import Product

    return list(Product.objects.filter(is_active=True).values_list("pk", flat=True))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def call(url: str, product_id: int, k: int, key: str | None) -> float:
    """One GET of similar items; its latency in ms."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(
        f"{url}/api/v1/products/{product_id}/similar/?k={k}", headers=headers
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000


def summary(label: str, timings: list[float], k: int) -> str:
    """p50/p90/p99 and mean in ms."""
    return (
        f"{label}: {len(timings)} calls, k={k}: p50 {percentile(timings, 50):.1f} ms, "
        f"p90 {percentile(timings, 90):.1f} ms, p99 {percentile(timings, 99):.1f} ms, "
        f"mean {statistics.fmean(timings):.1f} ms"
    )


def measure(url: str, ids: list[int], calls: int, k: int, key: str | None, label: str) -> str:
    """Call the endpoint `calls` times for random products."""
    rng = random.Random(0)
    timings = [
        call(url, rng.choice(ids), k, key)
        for _ in tqdm(range(calls), desc=f"GET similar ({label})", unit="call")
    ]
    return summary(label, timings, k)


def serve(port: int, env: dict[str, str]) -> subprocess.Popen:
    """One runserver process (no reloader, no threading: a single process, one call at a time)."""
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
         "--nothreading"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health/").read()
            return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("The server did not start; run `python manage.py demo --no-serve` first.")


def bench_both(ids: list[int], calls: int, k: int, port: int) -> list[str]:
    """Both modes, each in its own server process, calls alternating; a key made for the run."""
    from recommender.keys import api_key_create
    from shop.models import Product

    merchant = Product.objects.filter(pk__in=ids[:1]).get().merchant
    ids = list(Product.objects.filter(pk__in=ids, merchant=merchant).values_list("pk", flat=True))
    new = api_key_create(merchant=merchant, name="benchmark")
    lines = []
    try:
        modes = {
            "with a key (limits counted in Redis)": (new.full_key, {
                "LOOKALIKE_API_KEYS_REQUIRED": "1",
                "LOOKALIKE_CACHE_URL": os.environ.get("BENCH_REDIS_URL",
                                                      "redis://127.0.0.1:6379/3"),
                "LOOKALIKE_CACHE_PREFIX": f"bench-{os.getpid()}",
                # High enough that no call is refused: the limits are counted, not hit.
                "LOOKALIKE_API_BURST_LIMIT": "1000000",
                "LOOKALIKE_API_SUSTAINED_LIMIT": "1000000",
                "LOOKALIKE_API_DAILY_QUOTA": "1000000",
            }),
            "without a key (keys and limits off)": (None, {"LOOKALIKE_API_KEYS_REQUIRED": "0"}),
        }  # fmt: skip
        # Both servers run side by side and calls alternate between them, so that the noise of
        # a shared machine falls on both modes alike.
        servers = {label: serve(port + n, env) for n, (label, (_, env)) in enumerate(modes.items())}
        try:
            rng, timings = random.Random(0), {label: [] for label in modes}
            for i in tqdm(range(calls + 20), desc="GET similar, both modes", unit="pair"):
                product_id = rng.choice(ids)
                for n, (label, (key, _)) in enumerate(modes.items()):
                    took = call(f"http://127.0.0.1:{port + n}", product_id, k, key)
                    if i >= 20:  # the first 20 warm the processes up
                        timings[label].append(took)
            lines = [summary(label, timings[label], k) for label in modes]
        finally:
            for server in servers.values():
                server.terminate()
                server.wait()
    finally:
        new.api_key.delete()  # with its usage rows
    return lines


def main() -> None:
    """Measure against a running shop, or start servers and measure both modes (--serve)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--key", default=os.environ.get("LOOKALIKE_API_KEY"))
    parser.add_argument("--serve", action="store_true", help="start servers, measure both modes")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    ids = product_ids()
    if args.serve:
        lines = bench_both(ids, args.calls, args.k, args.port)
    else:
        lines = [measure(args.url, ids, args.calls, args.k, args.key, "similar")]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
