"""Import jobs as their merchant sees them."""

from __future__ import annotations

from django.db.models import QuerySet

from shop.models import EmbeddingStatus, ImportJob, ImportStatus, Merchant, Product

RECENT_JOBS = 20
ERRORS_SHOWN = 500
# Ids per query: SQLite refuses statements with more than 32,766 parameters.
ID_CHUNK = 10_000


def import_job_list(merchant: Merchant) -> QuerySet[ImportJob]:
    """A merchant's most recent imports, newest first."""
    return ImportJob.objects.filter(merchant=merchant).order_by("-created_at", "-id")[:RECENT_JOBS]


def import_job_get(merchant: Merchant, job_id: int) -> ImportJob | None:
    """One of this merchant's imports; None for another merchant's."""
    return ImportJob.objects.filter(merchant=merchant, pk=job_id).first()


def import_job_progress(job: ImportJob) -> dict:
    """Counts for the progress bar: rows parsed, photos embedded, failures, and a percent."""
    pending, failed = _photo_states(job.product_ids)
    # Counted as done unless still pending, so a product deleted meanwhile does not stall it.
    embedded = len(job.product_ids) - pending - len(failed)
    # Until every row is done, each row that has not failed yet is a photo still to embed.
    photos_expected = max(len(job.product_ids), job.rows_total - job.rows_failed)
    work = job.rows_total + photos_expected
    done = job.rows_parsed + embedded + len(failed)
    finished = job.status == ImportStatus.FINISHED and embedded + len(failed) >= photos_expected
    ended = finished or job.status == ImportStatus.FAILED
    percent = 100 if finished else min(99, 100 * done // work) if work else 0
    return {
        "id": job.pk,
        "status": job.status,
        "done": ended,
        "percent": percent,
        "rows_total": job.rows_total,
        "rows_parsed": job.rows_parsed,
        "rows_failed": job.rows_failed,
        "products_created": job.products_created,
        "products_updated": job.products_updated,
        "photos_total": photos_expected,
        "photos_embedded": embedded,
        "photos_failed": len(failed),
        "photo_failures": [
            {"sku": p.sku, "message": p.embedding_error} for p in failed[:ERRORS_SHOWN]
        ],
        "error": job.error,
        "errors": job.errors[:ERRORS_SHOWN],
    }


def _photo_states(product_ids: list[int]) -> tuple[int, list[Product]]:
    """(how many are pending, the failed ones) among these products."""
    pending, failed = 0, []
    for start in range(0, len(product_ids), ID_CHUNK):
        products = Product.objects.filter(pk__in=product_ids[start : start + ID_CHUNK])
        pending += products.filter(embedding_status=EmbeddingStatus.PENDING).count()
        failed += products.filter(embedding_status=EmbeddingStatus.FAILED).only(
            "sku", "embedding_error"
        )
    return pending, failed
