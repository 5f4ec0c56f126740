"""Merchant pages for catalog imports: the upload form, a job's live progress, past imports."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from embeddings.images import human_size
from shop.imports.forms import CatalogImportForm
from shop.imports.rows import OPTIONAL, REQUIRED
from shop.imports.selectors import import_job_get, import_job_list, import_job_progress
from shop.imports.services import import_job_create
from shop.merchant_views import merchant_required
from shop.models import Category, ImportJob, Merchant, Product


@merchant_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest, merchant: Merchant) -> HttpResponse:
    """Upload a catalog; a good upload becomes a job and its page, a bad one a 400."""
    if request.method != "POST":
        return _import_form(request, merchant, CatalogImportForm())
    form = CatalogImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_form(request, merchant, form, status=400)
    job = import_job_create(merchant, **form.cleaned_data)
    return redirect(job)


def _import_form(request, merchant: Merchant, form, status: int = 200) -> HttpResponse:
    context = {
        "merchant": merchant,
        "form": form,
        "jobs": import_job_list(merchant),
        "categories": Category.objects.all(),
        "required_columns": REQUIRED,
        "optional_columns": OPTIONAL,
        "limits": {
            "upload": human_size(settings.LOOKALIKE_IMPORT_MAX_UPLOAD_BYTES),
            "rows": settings.LOOKALIKE_IMPORT_MAX_ROWS,
            "entries": settings.LOOKALIKE_IMPORT_MAX_ZIP_ENTRIES,
            "photo": human_size(settings.LOOKALIKE_MAX_UPLOAD_BYTES),
        },
    }
    return render(request, "merchant/import.html", context, status=status)


def _job_or_404(merchant: Merchant, job_id: int) -> ImportJob:
    job = import_job_get(merchant, job_id)
    if job is None:
        # Another merchant's import is as unknown as one that does not exist.
        raise Http404("No such import.")
    return job


@merchant_required
@require_GET
def import_job_detail(request: HttpRequest, merchant: Merchant, pk: int) -> HttpResponse:
    """A job's progress bar (kept live by import-progress.js) and its failed rows."""
    job = _job_or_404(merchant, pk)
    context = {
        "merchant": merchant,
        "job": job,
        "progress": import_job_progress(job),
        "photos": _weakest_photos(merchant, job),
        "flag_percentile": settings.LOOKALIKE_AESTHETICS_FLAG_PERCENTILE,
    }
    return render(request, "merchant/import_job.html", context)


def _weakest_photos(merchant: Merchant, job: ImportJob, limit: int = 24) -> list[Product]:
    """The job's products with their photo quality, the ones to reshoot first."""
    from recommender.aesthetics.selectors import photo_quality_attach

    products = photo_quality_attach(
        Product.objects.filter(merchant=merchant, pk__in=job.product_ids or [])
    )
    scored = sorted(
        (p for p in products if p.photo_quality is not None), key=lambda p: p.photo_quality.score
    )
    return scored[:limit]


@merchant_required
@require_GET
def import_job_status(request: HttpRequest, merchant: Merchant, pk: int) -> JsonResponse:
    """A job's progress as JSON, for the page's polling."""
    return JsonResponse(import_job_progress(_job_or_404(merchant, pk)))
