"""What the OpenAPI document says beyond the serializers: parameters, errors and examples."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from recommender.serializers import ErrorSerializer, RateLimitErrorSerializer

PRODUCT_EXAMPLE = {
    "id": 17,
    "sku": "LK-BOT-0002",
    "title": "Brown leather ankle boots",
    "price": "89.00",
    "currency": "EUR",
    "category": "Boots",
    "category_slug": "boots",
    "in_stock": True,
    "image_url": "https://shop.example.com/media/products/3f/3f2a...c1.jpg",
    "thumbnail_url": "https://shop.example.com/media/products/3f/3f2a...c1-thumb.jpg",
    "product_url": "https://shop.example.com/products/17/",
}
ITEM_EXAMPLE = {
    **PRODUCT_EXAMPLE,
    "id": 23,
    "sku": "LK-BOT-0009",
    "product_url": "https://shop.example.com/products/23/",
    "score": 0.8731,
    "similarity": 0.8731,
    "aesthetics": None,
}
RESULTS_EXAMPLE = {
    "model": "efficientnet_lite0@1a2b3c4d",
    "index_version": 3,
    "count": 1,
    "results": [ITEM_EXAMPLE],
}


def error_example(status: int, code: str, message: str, errors: dict | None = None):
    """An example error body, named for its code."""
    return OpenApiExample(
        code,
        value={"code": code, "message": message, "errors": errors or {}},
        status_codes=[str(status)],
        response_only=True,
    )


def _error(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(examples))


UNAUTHORIZED = _error(
    "The API key is missing, malformed, unknown, wrong or revoked.",
    error_example(401, "missing_api_key", "This endpoint needs an API key: send ..."),
    error_example(401, "invalid_api_key", "The API key is not valid; check it or create ..."),
    error_example(401, "revoked_api_key", "This API key was revoked; ask the merchant ..."),
)
FORBIDDEN = _error(
    "The key may not be used from the browser origin that sent the call.",
    error_example(403, "origin_not_allowed", "This key may not be used from https://x.test; ..."),
)
TOO_MANY = OpenApiResponse(
    RateLimitErrorSerializer,
    description="Over a limit of the key (burst, sustained or daily quota). The Retry-After "
    "header says in how many seconds to try again.",
    examples=[
        OpenApiExample(
            "burst_limit_exceeded",
            value={
                "code": "burst_limit_exceeded",
                "message": "Over the burst limit of 20 calls per 10 seconds; retry in 4 s.",
                "errors": {},
                "limit": {"name": "burst", "calls": 20, "window_seconds": 10, "retry_after": 4},
            },
            status_codes=["429"],
            response_only=True,
        )
    ],
)
BAD_REQUEST = _error(
    "Invalid input; `errors` has a message per field.",
    error_example(
        400,
        "invalid",
        "Ensure this value is less than or equal to 100.",
        {"k": ["Ensure this value is less than or equal to 100."]},
    ),
)
NOT_FOUND = _error(
    "No such product in the key's catalog (products of other catalogs are not found either).",
    error_example(404, "not_found", "There is no product with id 999 in this catalog."),
)
NOT_EMBEDDED = _error(
    "The product's photo could not be processed, so it has no similar items.",
    error_example(409, "product_not_embedded", "This product's photo could not be processed..."),
)
UNSUPPORTED = _error(
    "The body is neither multipart/form-data nor JSON.",
    error_example(415, "unsupported_media_type", 'Unsupported media type "text/plain" ...'),
)
UNAVAILABLE = _error(
    "No similarity index has been built yet, or it cannot be used.",
    error_example(503, "index_unavailable", "No index yet; rebuild the index ..."),
)
SERVER_ERROR = _error(
    "An unexpected error; it was logged.",
    error_example(500, "server_error", "Something went wrong on our side; it was logged."),
)

KEYED_ERRORS = {401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY, 500: SERVER_ERROR}
SIMILAR_ERRORS = {
    **KEYED_ERRORS,
    400: BAD_REQUEST,
    404: NOT_FOUND,
    409: NOT_EMBEDDED,
    503: UNAVAILABLE,
}

PRODUCT_ID = OpenApiParameter(
    "product_id",
    OpenApiTypes.INT64,
    OpenApiParameter.PATH,
    description="A product id from the key's catalog.",
    examples=[OpenApiExample("a demo product", value=1)],
)
SKU = OpenApiParameter(
    "sku",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="A SKU of the key's catalog.",
    examples=[OpenApiExample("a demo SKU", value="LK-BOT-0001")],
)
RETRY_AFTER_NOTE = (
    "Needs an API key. Counts against the key's limits; a 429 answer carries Retry-After."
)


def add_retry_after_header(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: every 429 response documents its Retry-After header."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("429")
            if response is not None:
                response["headers"] = {
                    "Retry-After": {
                        "schema": {"type": "integer"},
                        "description": "Seconds to wait before the next call.",
                    }
                }
    return result
