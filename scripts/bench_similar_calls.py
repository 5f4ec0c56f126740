"""Time per similar-items API call in one process: catalog store off and on, neighbour lists
off and on, same run.

Calls `GET /api/v1/products/<id>/similar/` through Django's test client (the whole stack:
middleware, key check, rate limits in Redis, usage counting, search, JSON) with no answer
cache, product ids drawn uniformly, on the catalog scripts/bench_api.py builds (its --quick
one of 5,000 products by default; built here when missing). Each variant runs in turn for a
few rounds, the same ids in the same order, beside the keyed no-op endpoint for scale; wall
time includes PostgreSQL's answers, CPU time is this process's alone. As in a gunicorn worker,
the store is loaded and every card's JSON written first. Prints the figures (no report file);
--profile prints where a call with the defaults (store, lists, ranked ahead) spends its time.

Usage:
  python scripts/bench_similar_calls.py [--calls 500] [--rounds 3] [--products 5000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_api  # noqa: E402

# name: (catalog store, neighbour lists, similar items ranked ahead)
VARIANTS = {
    "store off (one query per call)": (False, False, "off"),
    "catalog store, searched": (True, False, "off"),
    "catalog store + neighbour lists": (True, True, "off"),
    "... + ranked ahead (the default)": (True, True, "inline"),
}
NOOP = "keyed no-op (for scale)"


def setup(products: int) -> tuple[list[int], str]:
    """Django on the benchmark catalog (built if missing); its product ids and a key."""
    quick = products <= 5_000
    args = argparse.Namespace(
        quick=quick,
        database_url=bench_api.DEFAULT_DB + ("_quick" if quick else ""),
        redis_url="redis://127.0.0.1:6379/4",
    )
    env = bench_api.bench_env(args)
    env["LOOKALIKE_API_RESULT_CACHE"] = "off"
    os.environ.update(env)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as gunicorn.conf.py sets it
    bench_api.database_create(args.database_url, drop=False)
    import django

    django.setup()
    from django.core.management import call_command

    from recommender.embedding import current_extractor
    from shop.models import Product

    call_command("migrate", verbosity=0)
    extractor = current_extractor()
    if not bench_api.catalog_ready(products, extractor.model_id):
        if Product.objects.exists():
            sys.exit(f"{args.database_url} holds another catalog; run scripts/bench_api.py first.")
        bench_api.catalog_build(products, extractor.dim, extractor.model_id)
    bench_api.lists_build()
    return list(Product.objects.values_list("pk", flat=True)), bench_api.bench_key()


def timed_calls(client, ids: list[int], path: str = "/api/v1/products/{}/similar/"):
    """(wall ms, CPU ms) per call over these product ids."""
    wall, cpu = time.perf_counter(), time.process_time()
    for product_id in ids:
        response = client.get(path.format(product_id))
        assert response.status_code == 200, response.content[:200]
    n = len(ids)
    return (time.perf_counter() - wall) * 1000 / n, (time.process_time() - cpu) * 1000 / n


def main() -> None:
    """Measure each variant in turn for a few rounds; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    all_ids, key = setup(args.products)
    from django.test import Client, override_settings

    client = Client(HTTP_HOST="127.0.0.1", headers={"Authorization": f"Bearer {key}"})
    # As a gunicorn worker starts (gunicorn.conf.py): the store loaded, every card's JSON
    # written, similar items ranked ahead.
    from recommender.catalog_store import catalog_snapshot
    from recommender.serializers import card_texts_fill
    from recommender.services import default_answers_warm, serving_version

    card_texts_fill(catalog_snapshot(index_version=serving_version()))
    default_answers_warm()
    rng = random.Random(0)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in [*VARIANTS, NOOP]}
    for round_ in range(args.rounds + 1):
        ids = [rng.choice(all_ids) for _ in range(args.calls)]
        for name, (store, lists, ahead) in VARIANTS.items():
            with override_settings(
                LOOKALIKE_CATALOG_STORE=store,
                LOOKALIKE_NEIGHBOURS=lists,
                LOOKALIKE_DEFAULT_ANSWERS=ahead,
            ):
                measured = timed_calls(client, ids)
            if round_:  # the first round warms the index, the model and the store
                figures[name].append(measured)
        noop = timed_calls(client, ids, "/api/v1/bench/noop-keyed/")
        if round_:
            figures[NOOP].append(noop)
    print(f"{args.products:,} products, {args.calls} calls x {args.rounds} rounds, k = 12:")
    for name, rounds in figures.items():
        wall = statistics.median(w for w, _ in rounds)
        cpu = statistics.median(c for _, c in rounds)
        print(f"  {name:32s} {wall:6.2f} ms per call (wall), {cpu:6.2f} ms CPU in this process")
    if args.profile:
        profiler = cProfile.Profile()
        with override_settings(LOOKALIKE_CATALOG_STORE=True, LOOKALIKE_NEIGHBOURS=True):  # defaults
            profiler.runcall(timed_calls, client, [rng.choice(all_ids) for _ in range(args.calls)])
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
