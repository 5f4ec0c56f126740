"""The JSON API: similar items for a product, and search by photo."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from embeddings import ImageRejected
from recommender import index as vector_index
from recommender.serializers import (
    ImageSearchSerializer,
    SimilarQuerySerializer,
    product_data,
    similar_item_data,
)
from recommender.services import (
    ProductNotEmbedded,
    SimilarFilters,
    SimilarResult,
    similar_to_image,
    similar_to_product,
)
from shop.images import decode_uploaded_file
from shop.selectors import product_get


class NotEmbedded(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "product_not_embedded"


class IndexUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "index_unavailable"


def exception_handler(exc, context):
    """One JSON shape for every error: code, message and, for bad input, field errors."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    fields = {}
    if isinstance(exc, ValidationError) and isinstance(detail, dict):
        fields = {name: [str(m) for m in messages] for name, messages in detail.items()}
        first = next(iter(fields.values()), ["Invalid input."])
        message = first[0] if len(fields) == 1 else "Some fields are invalid; see errors."
    else:
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
    code = getattr(exc, "default_code", "error")
    response.data = {"code": code, "message": message, "errors": fields}
    return response


def _results(result: SimilarResult, request: Request, **extra) -> Response:
    return Response(
        {
            **extra,
            "model": result.model_id,
            "index_version": result.index_version,
            "count": len(result.items),
            "results": [similar_item_data(item, request) for item in result.items],
        }
    )


def _run(search):
    try:
        return search()
    except vector_index.IndexNotFound as exc:
        raise IndexUnavailable(str(exc)) from exc
    except (vector_index.IndexCorrupt, vector_index.IndexMismatch) as exc:
        raise IndexUnavailable(f"The similarity index cannot be used: {exc}") from exc
    except ProductNotEmbedded as exc:
        raise NotEmbedded(
            f"This product's photo could not be processed, so it has no similar items: {exc}"
        ) from exc


class SimilarProductsApi(APIView):
    """GET /api/v1/products/<id>/similar/?k=12&category=boots"""

    def get(self, request: Request, product_id: int) -> Response:
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        k = query.validated_data.get("k") or settings.LOOKALIKE_SIMILAR_K
        category = query.validated_data.get("category") or None
        product = product_get(product_id)
        if product is None:
            raise NotFound(f"There is no product with id {product_id}.")
        result = _run(
            lambda: similar_to_product(product.pk, k, filters=SimilarFilters(category=category))
        )
        return _results(result, request, product=product_data(product, request))


class ImageSearchApi(APIView):
    """POST /api/v1/search/image/ with a multipart field 'image' (and optional k, category)."""

    parser_classes = [MultiPartParser]

    def post(self, request: Request) -> Response:
        form = ImageSearchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            image = decode_uploaded_file(form.validated_data["image"])
        except ImageRejected as exc:
            raise ValidationError({"image": [str(exc)]}) from None
        k = form.validated_data.get("k") or settings.LOOKALIKE_SIMILAR_K
        category = form.validated_data.get("category") or None
        box = form.validated_data.get("box")
        filters = SimilarFilters(category=category)
        result = _run(lambda: similar_to_image(image, k, filters=filters, box=box))
        return _results(result, request)


def not_found(request, exception=None):
    """404 handler: JSON in the API's error shape under /api/, the shop's page elsewhere."""
    if request.path.startswith("/api/"):
        body = {
            "code": "not_found",
            "message": f"There is no API endpoint at {request.path}; see /api/v1/.",
            "errors": {},
        }
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
