"""Celery tasks. They take ids, re-fetch, and do nothing twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from recommender import services
from recommender.aesthetics.services import photos_score
from recommender.aesthetics.tasks import aesthetics_retrain  # noqa: F401 (registers the task)

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    soft_time_limit=900,
    time_limit=1200,
)
def embed_products(product_ids: list[int]) -> dict:
    """Embed these products' photos (skipping ones already done) and refresh the index."""
    report = services.products_embed(product_ids)
    if report.embedded or report.reused:
        photos_score(product_ids)
        services.index_rebuild()
    logger.info("Embedded products %s: %s", product_ids[:10], report.as_dict())
    return report.as_dict()
