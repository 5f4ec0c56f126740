"""Celery tasks of the catalog. They take ids and re-fetch."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from shop.imports.services import import_job_run


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    soft_time_limit=3600,
    time_limit=3900,
)
def import_catalog(job_id: int) -> dict:
    """Run one catalog import job; a finished job is left as it is."""
    job = import_job_run(job_id)
    return {"job": job.pk, "status": job.status, "rows_failed": job.rows_failed}
