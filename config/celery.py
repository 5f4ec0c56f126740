"""The Celery app. Without CELERY_BROKER_URL, tasks run eagerly in the calling process."""

import os

from celery import Celery

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
