"""Storefront pages: catalog, product, similar items (search by click), search by photo."""

from __future__ import annotations

import base64
import io
import logging

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from PIL import Image

from embeddings.preprocess import crop_box
from recommender import index as vector_index
from recommender.aesthetics.clicks import impression_log_result
from recommender.services import (
    ProductNotEmbedded,
    SimilarFilters,
    SimilarResult,
    similar_to_image,
    similar_to_product,
)
from shop.forms import PhotoSearchForm
from shop.models import Product
from shop.selectors import product_get, product_list

logger = logging.getLogger(__name__)

INDEX_ERRORS = (vector_index.IndexNotFound, vector_index.IndexCorrupt, vector_index.IndexMismatch)
UNAVAILABLE = "Similar items are not available right now: {}"


def catalog(request: HttpRequest) -> HttpResponse:
    """The catalog grid with search, category filter and pagination."""
    query = request.GET.get("q", "").strip()[:100]
    category = request.GET.get("category", "").strip()[:100]
    paginator = Paginator(
        product_list(query=query, category_slug=category), settings.LOOKALIKE_PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "shop/catalog.html",
        {"page": page, "query": query, "category": category, "total": paginator.count},
    )


def _similar_or_error(product: Product, k: int, category: str | None = None):
    try:
        return similar_to_product(product.pk, k, filters=SimilarFilters(category=category)), ""
    except (*INDEX_ERRORS, ProductNotEmbedded) as exc:
        logger.warning("Similar items for %s unavailable: %s", product.pk, exc)
        return None, UNAVAILABLE.format(exc)


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A product with its 'Visually similar' rail."""
    product = product_get(pk)
    if product is None:
        raise Http404("There is no such product.")
    result, error = _similar_or_error(product, settings.LOOKALIKE_SIMILAR_K)
    impression = impression_log_result(result, "product", product.pk)
    return render(
        request,
        "shop/product.html",
        {"product": product, "result": result, "error": error, "impression": impression},
    )


def similar(request: HttpRequest, pk: int) -> HttpResponse:
    """Search by click: everything that looks like this product."""
    product = product_get(pk)
    if product is None:
        raise Http404("There is no such product.")
    category = request.GET.get("category", "").strip()[:100] or None
    result, error = _similar_or_error(product, 24, category)
    return render(
        request,
        "shop/similar.html",
        {
            "product": product,
            "result": result,
            "error": error,
            "category": category or "",
            "impression": impression_log_result(result, "product", product.pk),
        },
    )


@require_http_methods(["GET", "POST"])
def photo_search(request: HttpRequest) -> HttpResponse:
    """Search by photo: upload, drop or take a picture; see matching products."""
    if request.method == "GET":
        return render(request, "shop/photo_search.html", {"form": PhotoSearchForm()})
    form = PhotoSearchForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "shop/photo_search.html", {"form": form}, status=400)
    image = form.cleaned_data["photo"]
    box = form.cleaned_data.get("box")
    shown = crop_box(image, box) if box else image
    context = {"form": PhotoSearchForm(), "query_photo": _data_uri(shown), "searched": True}
    try:
        filters = SimilarFilters(category=form.cleaned_data.get("category") or None)
        result: SimilarResult = similar_to_image(image, 24, filters=filters, box=box)
        context["result"] = result
        context["impression"] = impression_log_result(result, "photo", None)
    except INDEX_ERRORS as exc:
        context["error"] = UNAVAILABLE.format(exc)
    return render(request, "shop/photo_search.html", context)


def _data_uri(image: Image.Image) -> str:
    # The query photo is shown back to the shopper but never stored.
    from embeddings.preprocess import to_rgb

    preview = to_rgb(image).copy()  # thumbnail() shrinks in place: not the photo searched with
    preview.thumbnail((480, 480))
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
