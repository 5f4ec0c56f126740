"""The Celery app. Without CELERY_BROKER_URL, tasks run eagerly in the calling process."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lookalike")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Weekly: retrain the aesthetics scorer from new clicks; it goes live only if not worse.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "aesthetics-retrain": {
        "task": "recommender.aesthetics.tasks.aesthetics_retrain",
        "schedule": 7 * 24 * 3600,
    },
}


@worker_init.connect
@worker_process_init.connect
def _embeds_in_bulk(**kwargs) -> None:
    """A worker embeds catalogs in bulk: LOOKALIKE_COMPILE=auto may compile its backbone."""
    from recommender.embedding import mark_bulk_process

    mark_bulk_process()
