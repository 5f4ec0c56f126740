"""gunicorn settings for serving Lookalike: `gunicorn config.wsgi` reads this file from here.

Command-line flags win over these (`gunicorn config.wsgi -w 4 -b 0.0.0.0:8000`). The worker
count and class are what scripts/bench_api.py measured best (docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import multiprocessing
import os

# Each worker is one process with one request at a time: the workers are the parallelism, so
# FAISS and PyTorch must not each start a thread per core in every worker (set before they load).
os.environ.setdefault("OMP_NUM_THREADS", "1")

bind = os.environ.get("LOOKALIKE_BIND", "127.0.0.1:8000")
# One worker per core: on 2 cores, 2 workers served the no-op 1.8x and uncached similar items
# 1.1-1.3x faster than 4 did (docs/benchmarks.md); each worker also holds the model (~0.6 GiB).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# sync, not gthread: measured with wrk (16 connections, 2 workers), gthread's poller thread and
# request thread hand the GIL back and forth at every Redis or database read, and the keyed
# no-op fell to a quarter of the bare one's rate; with sync workers the two are close.
worker_class = "sync"
timeout = 60
accesslog = os.environ.get("LOOKALIKE_ACCESS_LOG") or None


def post_worker_init(worker) -> None:
    """Load the index (and its model) and the catalog store before the first request."""
    from django.db import DatabaseError

    from recommender import index as vector_index
    from recommender import serializers  # noqa: F401 (writes the cards' JSON on each load)
    from recommender.catalog_store import catalog_snapshot
    from recommender.services import default_answers_warm, serving_index

    try:
        index_version = serving_index()[1].version
    except (vector_index.IndexNotFound, vector_index.IndexCorrupt, vector_index.IndexMismatch):
        worker.log.warning("No usable index yet; similar items answer 503 until there is one")
        index_version = 0
    try:
        # With the API's JSON of each card (recommender.serializers.card_texts_fill, run on
        # every full load: LOOKALIKE_API_CARD_CACHE_SIZE cards at most, 100,000 in about 0.6 s).
        catalog_snapshot(index_version=index_version)
    except DatabaseError as exc:
        worker.log.warning("Catalog store not loaded (%s); the first similar-items call will", exc)
    else:
        if index_version:
            # Every product's similar items for the default parameters, ranked before the
            # first call rather than beside it (recommender.answers).
            default_answers_warm()
    # What the worker has loaded by now (Django, the model's libraries, the index, the store:
    # about 430,000 objects) lives as long as the worker: kept out of the garbage collector's
    # walks, whose full collections took 0.23 s each and showed as 150-170 ms p99 spikes.
    gc.collect()
    gc.freeze()
