"""The partner API: similar items, search by photo, the key's catalog, usage and health."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from embeddings import ImageRejected
from recommender import api_docs as docs
from recommender import index as vector_index
from recommender.authentication import ApiKeyAuthentication, HasApiKey
from recommender.cache import result_cache_on, result_get, result_set
from recommender.catalog_store import VERSION_KEY, version_of
from recommender.embedding import query_decode_side
from recommender.limits import LimitExceeded, key_limits, limits_check
from recommender.models import ApiKey
from recommender.serializers import (
    HealthSerializer,
    ImageBase64Serializer,
    ImageUploadSerializer,
    ProductListQuerySerializer,
    ProductSerializer,
    SimilarQuerySerializer,
    SimilarResultsSerializer,
    SimilarToProductSerializer,
    UsageQuerySerializer,
    UsageSerializer,
    similar_results_data,
    similar_results_json,
    without_blanks,
)
from recommender.services import (
    Catalog,
    ProductNotEmbedded,
    SimilarFilters,
    SimilarResult,
    ranked_ahead,
    serving_version,
    similar_to_image,
    similar_to_product,
)
from recommender.usage import usage_key_rows
from shop.images import decode_upload, decode_uploaded_file
from shop.models import Product

MAX_ID = 2**63 - 1


class NotEmbedded(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "product_not_embedded"


class IndexUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "index_unavailable"


class RateLimited(APIException):
    """429 naming the limit; DRF's handler turns `wait` into the Retry-After header."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, exceeded: LimitExceeded) -> None:
        name = exceeded.limit.name
        code = "daily_quota_exceeded" if name == "daily" else f"{name}_limit_exceeded"
        super().__init__(str(exceeded), code=code)
        self.wait = exceeded.retry_after
        self.limit = {
            "name": name,
            "calls": exceeded.limit.calls,
            "window_seconds": exceeded.limit.window,
            "retry_after": exceeded.retry_after,
        }


def exception_handler(exc, context):
    """One JSON shape for every error: code, message and, for bad input, field errors."""
    if isinstance(exc, Http404):
        exc = NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a 500, made JSON by the middleware
    detail = response.data
    fields = {}
    if isinstance(exc, ValidationError) and isinstance(detail, dict):
        fields = {name: [str(m) for m in _flat(messages)] for name, messages in detail.items()}
        first = next(iter(fields.values()), ["Invalid input."])
        message = first[0] if len(fields) == 1 else "Some fields are invalid; see errors."
        code = "invalid"
    else:
        if isinstance(detail, list):
            detail = detail[0] if detail else "Invalid input."
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        codes = exc.get_codes() if isinstance(exc, APIException) else None
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
    response.data = {"code": code, "message": message, "errors": fields}
    if isinstance(exc, RateLimited):
        response.data["limit"] = exc.limit
    return response


def _flat(messages) -> list:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    return list(messages) if isinstance(messages, list) else [messages]


def _search(search) -> SimilarResult:
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


class PartnerApiView(APIView):
    """A catalog endpoint: needs a key, sees only the key's catalog, counts against its limits."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    # A search reads the catalog version (see recommender.catalog_store) in the same round trip
    # to Redis as the rate limits; None: not read (the search reads it then).
    searches_catalog = False
    catalog_version: int | None = None

    def permission_denied(self, request: Request, message=None, code=None) -> None:
        if not request.successful_authenticator:
            raise exceptions.NotAuthenticated(HasApiKey.message, code=HasApiKey.code)
        super().permission_denied(request, message, code)

    def check_throttles(self, request: Request) -> None:
        if isinstance(request.auth, ApiKey):
            store = self.searches_catalog and settings.LOOKALIKE_CATALOG_STORE
            peek = (VERSION_KEY,) if store else ()
            try:
                peeked = limits_check(request.auth.pk, key_limits(request.auth), peek=peek)
            except LimitExceeded as exc:
                raise RateLimited(exc) from None
            if peek:
                self.catalog_version = version_of(peeked[0])

    def catalog(self) -> QuerySet[Product]:
        """Active products the key may see: its merchant's (all, if keys are switched off)."""
        return Product.objects.filter(self.in_catalog()).select_related("category")

    def in_catalog(self) -> Q:
        """The condition a product of the key's catalog meets."""
        return self.key_catalog().q()

    def key_catalog(self) -> Catalog:
        """The key's catalog: its merchant's active products (all, if keys are switched off)."""
        if isinstance(self.request.auth, ApiKey):
            return Catalog(merchant_id=self.request.auth.merchant_id)
        return Catalog()

    def catalog_product(self, **lookup) -> Product:
        """One product of the key's catalog, or a 404 that does not tell other catalogs apart."""
        if lookup.get("pk", 0) > MAX_ID or len(lookup.get("sku", "")) > 64:
            product = None
        else:
            product = self.catalog().filter(**lookup).first()
        if product is None:
            raise _not_found(lookup)
        return product

    def filters(self, query: dict) -> SimilarFilters:
        """Similar-item filters from validated parameters, scoped to the key's catalog."""
        return SimilarFilters(
            category=query.get("category") or None,
            merchant_id=self.request.auth.merchant_id if self.request.auth else None,
            min_price=query.get("min_price"),
            max_price=query.get("max_price"),
            in_stock=query["in_stock"],
        )

    def search_options(self, params: dict) -> dict:
        """k, filters and aesthetics weight of a search, from its validated parameters."""
        return {
            "k": params.get("k") or settings.LOOKALIKE_SIMILAR_K,
            "filters": self.filters(params),
            "aesthetics_weight": params.get("aesthetics_weight"),
            "catalog_version": self.catalog_version,
        }

    def similar_response(self, **lookup) -> HttpResponse:
        """Similar items of a catalog product, from the answer cache when it holds them."""
        # Keyed by the parameters as sent: only valid ones are ever cached, so a hit needs
        # neither validation nor the product's row (the key's catalog is part of the key).
        sent = tuple(sorted((name, tuple(v)) for name, v in self.request.query_params.lists()))
        params = _similar_params(sent)
        options = self.search_options(params) if params is not None else None
        # An answer ranked ahead costs less to write than to look up and keep: not cached.
        caching = result_cache_on() and not (
            options is not None
            and ranked_ahead(options["k"], options["filters"], options["aesthetics_weight"])
        )
        if caching:
            body = result_get(self._cache_key(_search(serving_version), lookup, sent))
            if body is not None:
                return HttpResponse(body, content_type="application/json")
        if params is None:
            self.catalog_product(**lookup)  # an unknown product is a 404 before its parameters
            query = SimilarQuerySerializer(data=without_blanks(self.request.query_params))
            query.is_valid()
            raise ValidationError(query.errors)
        # By id, the product's row comes with its similar items' rows (one query); by SKU,
        # its id is looked up first.
        if "pk" in lookup and lookup["pk"] <= MAX_ID:
            product_id = lookup["pk"]
        else:
            product_id = self.catalog_product(**lookup).pk
        try:
            result = _search(
                lambda: similar_to_product(product_id, **options, catalog=self.key_catalog())
            )
        except Product.DoesNotExist:
            raise _not_found(lookup) from None
        body = similar_results_json(result, self.request, result.anchor)
        if caching:
            result_set(self._cache_key(result.index_version, lookup, sent), body)
        return HttpResponse(body, content_type="application/json")

    def _cache_key(self, version: int, lookup: dict, sent: tuple) -> tuple:
        # Everything an answer depends on besides product data (which the TTL bounds).
        scope = self.request.auth.merchant_id if isinstance(self.request.auth, ApiKey) else None
        host = f"{self.request.scheme}://{self.request.get_host()}"
        return (version, scope, *sorted(lookup.items()), sent, host)


def _not_found(lookup: dict) -> NotFound:
    what = f"id {lookup['pk']}" if "pk" in lookup else f"SKU {lookup['sku']!r}"
    return NotFound(f"There is no product with {what} in this catalog.")


JSON = JSONRenderer()


@lru_cache(maxsize=1024)
def _similar_params(sent: tuple) -> Mapping | None:
    """Validated similar-items parameters from (name, values) as sent; None when invalid.

    Kept per process: most calls send the same few sets, and validating one with a serializer
    costs 0.1 ms.
    """
    query = SimilarQuerySerializer(data={name: v[-1] for name, v in sent if v[-1] != ""})
    return MappingProxyType(query.validated_data) if query.is_valid() else None


SIMILAR_EXAMPLE = OpenApiExample(
    "similar",
    value={**docs.RESULTS_EXAMPLE, "product": docs.PRODUCT_EXAMPLE},
    response_only=True,
)


class SimilarProductsApi(PartnerApiView):
    searches_catalog = True

    @extend_schema(
        operation_id="similar_products",
        summary="Products that look like a product",
        description=docs.RETRY_AFTER_NOTE,
        tags=["similar items"],
        parameters=[SimilarQuerySerializer, docs.PRODUCT_ID],
        responses={200: SimilarToProductSerializer, **docs.SIMILAR_ERRORS},
        examples=[SIMILAR_EXAMPLE],
    )
    def get(self, request: Request, product_id: int) -> HttpResponse:
        return self.similar_response(pk=product_id)


class SimilarProductsBySkuApi(PartnerApiView):
    searches_catalog = True

    @extend_schema(
        operation_id="similar_products_by_sku",
        summary="Products that look like a product, found by SKU",
        description=docs.RETRY_AFTER_NOTE,
        tags=["similar items"],
        parameters=[SimilarQuerySerializer, docs.SKU],
        responses={200: SimilarToProductSerializer, **docs.SIMILAR_ERRORS},
        examples=[SIMILAR_EXAMPLE],
    )
    def get(self, request: Request, sku: str) -> HttpResponse:
        return self.similar_response(sku=sku)


class ImageSearchApi(PartnerApiView):
    parser_classes = [MultiPartParser, JSONParser]
    searches_catalog = True

    @extend_schema(
        operation_id="search_by_image",
        summary="Products that look like a photo",
        description="Send the photo as multipart/form-data (field `image`) or as JSON "
        "(`image_base64`); k, category, min_price, max_price, in_stock and aesthetics_weight "
        "go in the same body. The photo is not stored. " + docs.RETRY_AFTER_NOTE,
        tags=["similar items"],
        request={
            "multipart/form-data": ImageUploadSerializer,
            "application/json": ImageBase64Serializer,
        },
        responses={
            200: SimilarResultsSerializer,
            **docs.SIMILAR_ERRORS,
            400: docs._error(
                "Invalid input, or a file that is not an accepted photo.",
                docs.error_example(
                    400,
                    "invalid",
                    "This file is not an image; send a JPEG, PNG, WebP or GIF photo.",
                    {"image": ["This file is not an image; send a JPEG, PNG, WebP or GIF photo."]},
                ),
            ),
            415: docs.UNSUPPORTED,
        },
        examples=[OpenApiExample("results", value=docs.RESULTS_EXAMPLE, response_only=True)],
    )
    def post(self, request: Request) -> Response:
        image = self._image(request)
        params = self._params
        result = _search(
            lambda: similar_to_image(image, **self.search_options(params), box=params.get("box"))
        )
        return Response(similar_results_data(result, request))

    def _image(self, request: Request):
        if request.content_type.startswith("multipart/"):
            form = ImageUploadSerializer(data=without_blanks(request.data))
            form.is_valid(raise_exception=True)
            decode = lambda: decode_uploaded_file(  # noqa: E731
                form.validated_data["image"], query_decode_side()
            )
        else:
            if not isinstance(request.data, dict):
                raise ValidationError({"non_field_errors": ["Send a JSON object."]})
            form = ImageBase64Serializer(data=request.data)
            form.is_valid(raise_exception=True)
            decode = lambda: decode_upload(  # noqa: E731
                form.validated_data["image_base64"], query_decode_side()
            )
        self._params = form.validated_data
        field = "image" if "image" in form.fields else "image_base64"
        try:
            return decode()
        except ImageRejected as exc:
            raise ValidationError({field: [str(exc)]}) from None


class CatalogPagination(PageNumberPagination):
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100


class ProductListApi(PartnerApiView, ListAPIView):
    serializer_class = ProductSerializer
    pagination_class = CatalogPagination

    @extend_schema(
        operation_id="products_list",
        summary="The key's catalog, a page at a time",
        description="Active products ordered by id. " + docs.RETRY_AFTER_NOTE,
        tags=["catalog"],
        parameters=[ProductListQuerySerializer],
        responses={
            200: ProductSerializer(many=True),
            **docs.KEYED_ERRORS,
            400: docs.BAD_REQUEST,
            404: docs._error(
                "There is no such page.", docs.error_example(404, "not_found", "Invalid page.")
            ),
        },
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Product]:
        query = ProductListQuerySerializer(data=without_blanks(self.request.query_params))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        products = self.catalog()
        if params.get("category"):
            products = products.filter(category__slug=params["category"])
        if params.get("min_price") is not None:
            products = products.filter(price__gte=params["min_price"])
        if params.get("max_price") is not None:
            products = products.filter(price__lte=params["max_price"])
        if params.get("in_stock") is not None:
            products = (
                products.filter(stock__gt=0) if params["in_stock"] else products.filter(stock=0)
            )
        return products.order_by("id")


class ProductDetailApi(PartnerApiView):
    @extend_schema(
        operation_id="product_detail",
        summary="One product of the key's catalog",
        description=docs.RETRY_AFTER_NOTE,
        tags=["catalog"],
        parameters=[docs.PRODUCT_ID],
        responses={200: ProductSerializer, **docs.KEYED_ERRORS, 404: docs.NOT_FOUND},
        examples=[OpenApiExample("product", value=docs.PRODUCT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, product_id: int) -> Response:
        product = self.catalog_product(pk=product_id)
        return Response(ProductSerializer(product, context={"request": request}).data)


class UsageApi(PartnerApiView):
    @extend_schema(
        operation_id="usage",
        summary="Calls made with this key, per day and endpoint",
        description="Days are UTC. " + docs.RETRY_AFTER_NOTE,
        tags=["account"],
        parameters=[UsageQuerySerializer],
        responses={200: UsageSerializer, **docs.KEYED_ERRORS, 400: docs.BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=without_blanks(request.query_params))
        query.is_valid(raise_exception=True)
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Usage is counted per key; send one.")
        days = query.validated_data["days"]
        rows = usage_key_rows(request.auth, days=days)
        return Response(
            UsageSerializer(
                {
                    "key": f"lk_{request.auth.prefix}",
                    "days": days,
                    "calls": sum(r["calls"] for r in rows),
                    "errors": sum(r["errors"] for r in rows),
                    "usage": rows,
                }
            ).data
        )


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        summary="Whether the service can answer similar-item calls",
        description="Needs no key and counts against no limit.",
        tags=["account"],
        auth=[],
        responses={
            200: OpenApiResponse(HealthSerializer),
            500: docs.SERVER_ERROR,
        },
        examples=[
            OpenApiExample(
                "ok",
                value={
                    "status": "ok",
                    "model": "efficientnet_lite0@1a2b3c4d",
                    "index_version": 3,
                    "indexed_products": 429,
                    "message": "",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        try:
            manifest = vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR)
            message = "" if manifest else "No index yet; run `python manage.py reindex`."
        except vector_index.IndexCorrupt as exc:
            manifest, message = None, str(exc)
        body = {
            "status": "ok" if manifest else "degraded",
            "model": manifest.model_id if manifest else None,
            "index_version": manifest.version if manifest else None,
            "indexed_products": manifest.count if manifest else None,
            "message": message,
        }
        return Response(HealthSerializer(body).data)


def _no_endpoint(request) -> str:
    return f"There is no API endpoint at {request.path}; see /api/docs/."


class BenchOnly:
    """An endpoint that exists only on benchmark servers (LOOKALIKE_API_BENCH_ENDPOINTS)."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        # Before the key is checked: elsewhere these paths are as absent as any unknown one.
        if not settings.LOOKALIKE_API_BENCH_ENDPOINTS:
            raise NotFound(_no_endpoint(request))
        super().initial(request, *args, **kwargs)

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class BenchNoopApi(BenchOnly, APIView):
    """Does nothing, with nothing in front: what Django + DRF alone cost."""

    authentication_classes = []
    permission_classes = [AllowAny]


class BenchKeyedNoopApi(BenchOnly, PartnerApiView):
    """Does nothing behind the partner API's key check, rate limits and usage counting."""


def not_found(request, exception=None):
    """404 handler: JSON in the API's error shape under /api/, the shop's page elsewhere."""
    if request.path.startswith("/api/"):
        body = {
            "code": "not_found",
            "message": _no_endpoint(request),
            "errors": {},
        }
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
