"""Periodic retraining of the aesthetics scorer (Celery beat, see config/celery.py)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.management import CommandError, call_command

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=3600, time_limit=3900)
def aesthetics_retrain() -> str:
    """Retrain from the configured sources; the command keeps the live scorer if worse."""
    ratings = settings.LOOKALIKE_AESTHETICS_RATINGS_DIR
    options = {"clicks": True}
    if ratings:
        options.update(images=ratings / "images", scores=ratings / "scores.csv")
    try:
        call_command("train_aesthetics", **options)
    except CommandError as exc:
        logger.warning("Aesthetics scorer not replaced: %s", exc)
        return f"kept: {exc}"
    call_command("score_photos")
    return "published"
