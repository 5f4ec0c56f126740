"""Partner API plumbing on /api/ paths: CORS per key, usage counting, JSON for every error."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from recommender.keys import origin_allowed
from recommender.models import ApiKey
from recommender.usage import usage_record

logger = logging.getLogger(__name__)

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, X-Api-Key, Content-Type"
EXPOSED_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE = "600"

# Error codes for responses that reach us as HTML (Django's own 400/403/404/500 pages).
_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "server_error",
}


class PartnerApiMiddleware:
    """CORS only on /api/ and only for the key's own origins; no credentials, ever."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        origin = request.headers.get("Origin")
        if (
            request.method == "OPTIONS"
            and origin
            and "Access-Control-Request-Method" in (request.headers)
        ):
            return preflight(origin)
        response = as_json_error(self.get_response(request))
        api_key: ApiKey | None = getattr(request, "lookalike_api_key", None)
        if api_key is not None:
            _count(request, response, api_key)
            if origin and origin_allowed(api_key, origin):
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        patch_vary_headers(response, ["Origin"])
        return response


def preflight(origin: str) -> HttpResponse:
    """Answer a browser's preflight: the key is not sent with it, so any active key's origin."""
    # The real call then checks the origin against its own key.
    candidates = ApiKey.objects.filter(
        revoked_at__isnull=True, allowed_origins__icontains=origin.rstrip("/")
    )
    if not any(origin_allowed(key, origin) for key in candidates):
        return JsonResponse(
            {
                "code": "origin_not_allowed",
                "message": f"No API key allows calls from {origin}; the merchant can add it to "
                "a key's allowed origins.",
                "errors": {},
            },
            status=403,
        )
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    patch_vary_headers(response, ["Origin"])
    return response


def as_json_error(response: HttpResponse) -> HttpResponse:
    """An error page that is not JSON yet (Django's own 400/403/500) in the API's shape."""
    content_type = response.get("Content-Type", "")
    if response.status_code < 400 or "json" in content_type:
        return response
    status = response.status_code
    message = {
        500: "Something went wrong on our side; it was logged. Try again in a moment.",
        400: "The request could not be read; check its headers and body.",
    }.get(
        status, f"{HTTPStatus(status).phrase}." if status in HTTPStatus._value2member_map_ else ""
    )
    body = {"code": _CODES.get(status, "error"), "message": message or "Error.", "errors": {}}
    json_response = JsonResponse(body, status=status)
    for header in ("Retry-After", "Allow", "WWW-Authenticate"):
        if header in response:
            json_response[header] = response[header]
    return json_response


def _count(request: HttpRequest, response: HttpResponse, api_key: ApiKey) -> None:
    match = request.resolver_match
    endpoint = match.url_name if match and match.url_name else "other"
    usage_record(api_key.pk, endpoint, failed=response.status_code >= 400)
    # last_used_at is for people reading the key list: a minute's precision saves a write per call.
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > dt.timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        # The key object is kept by the key cache across calls: remember the write there too.
        api_key.last_used_at = now
