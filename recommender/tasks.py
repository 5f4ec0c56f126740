"""Celery tasks. They take ids, re-fetch, and do nothing twice.

Embedding goes to its own queue (``LOOKALIKE_EMBED_QUEUE``) so GPU hosts can consume only
that; index writes and reconcile go to the default queue, next to the index files.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError
from kombu.exceptions import OperationalError as BrokerError

from recommender import indexing, services
from recommender.aesthetics.services import photos_score
from recommender.aesthetics.tasks import aesthetics_retrain  # noqa: F401 (registers the task)

logger = logging.getLogger(__name__)

TRANSIENT = (DatabaseError, OSError, BrokerError)
# Tasks over product photos: acknowledged when done (requeued if their worker dies), retried
# with backoff on transient errors only, and stopped by soft and hard time limits.
PHOTO_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
    "soft_time_limit": 900,
    "time_limit": 1200,
}


@shared_task(**PHOTO_TASK)
def embed_products(product_ids: list[int]) -> dict:
    """Embed these products' photos for every model in use, then update the index."""
    report = services.EmbedReport()
    for extractor in indexing.embedding_models():
        # Unreadable photos are recorded as failed on the product, never retried.
        one = services.products_embed(product_ids, extractor=extractor)
        report.embedded += one.embedded
        report.reused += one.reused
        report.failed.update(one.failed)
    logger.info("Embedded products %s: %s", product_ids[:10], report.as_dict())
    sync_index.delay(product_ids)
    # Scoring photo quality costs more than embedding; as a task of its own it never delays
    # a product's appearance in similar items (an unscored photo ranks as the median).
    score_photos.delay(product_ids)
    return report.as_dict()


@shared_task(**PHOTO_TASK)
def score_photos(product_ids: list[int]) -> dict[str, int]:
    """Score these products' photos with the live aesthetics scorer (skipping scored ones)."""
    return photos_score(product_ids)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(*TRANSIENT, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=8,
    soft_time_limit=600,
    time_limit=900,
)
def sync_index(changed_ids: list[int] | None = None) -> dict:
    """Apply pending adds, updates and removals to the index as one new version."""
    report = indexing.index_sync(changed_ids)
    return {
        "added": report.added,
        "removed": report.removed,
        "updated": report.updated,
        "version": report.version,
    }


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3000, time_limit=3600)
def reconcile_index() -> dict:
    """The periodic repair: embed what lacks a vector, fix missing and stale index entries."""
    report = indexing.index_reconcile()
    logger.info("Reconcile: %s", report.as_dict())
    # Lists whose build was lost (a broker outage, a worker killed) are built again.
    if (version := services.neighbours_missing()) is not None:
        services.neighbours_schedule(version)
    return report.as_dict()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=3000,
    time_limit=3600,
)
def build_neighbours(version: int) -> dict:
    """Store each product's nearest neighbours for this index version (if still current)."""
    built = services.neighbours_build(version)
    return {"version": version, "built": built is not None}


@shared_task(
    acks_late=True, reject_on_worker_lost=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 600
)
def reindex() -> dict:
    """Build a complete index for the configured model, then switch to it."""
    manifest = indexing.index_reindex()
    return {"version": manifest.version, "model": manifest.model_id, "count": manifest.count}
