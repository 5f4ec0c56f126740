"""API key authentication for the partner API (DRF), and how the OpenAPI document shows it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from recommender.keys import KeyRejected, api_key_check, origin_allowed
from recommender.models import ApiKey


class OriginNotAllowed(exceptions.PermissionDenied):
    default_code = "origin_not_allowed"


def presented_key(request: Request) -> str | None:
    """The key in `Authorization: Bearer <key>` or `X-Api-Key`, or None when neither is sent."""
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, key = authorization.partition(" ")
        # Not the Bearer scheme: the key check below reports it as malformed.
        return key.strip() if scheme.lower() == "bearer" else authorization
    key = request.headers.get("X-Api-Key", "").strip()
    return key or None


def _same_origin(request: Request, origin: str) -> bool:
    # The docs page on this very site calls the API with its own Origin header.
    return origin.rstrip("/").lower() == f"{request.scheme}://{request.get_host()}".lower()


class ApiKeyAuthentication(BaseAuthentication):
    """A partner's key: request.auth is the ApiKey, scoped to its merchant's catalog."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        key = presented_key(request)
        if key is None:
            return None
        try:
            api_key = api_key_check(key)
        except KeyRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc), code=exc.code) from None
        # The Django request keeps the key too: the middleware adds CORS headers and counts usage.
        request._request.lookalike_api_key = api_key
        origin = request.headers.get("Origin")
        if origin and not _same_origin(request, origin) and not origin_allowed(api_key, origin):
            raise OriginNotAllowed(
                f"This key may not be used from {origin}; the merchant can add it to the key's "
                "allowed origins."
            )
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return 'Bearer realm="api"'


class HasApiKey(BasePermission):
    """Catalog endpoints need a valid key (unless keys are switched off to benchmark)."""

    message = (
        "This endpoint needs an API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'. "
        "Merchants create keys on their dashboard."
    )
    code = "missing_api_key"

    def has_permission(self, request: Request, view) -> bool:
        return isinstance(request.auth, ApiKey) or not settings.LOOKALIKE_API_KEYS_REQUIRED


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "recommender.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema) -> list[dict]:
        # Either header will do.
        return [{"bearerAuth": []}, {"apiKeyHeader": []}]

    def get_security_definition(self, auto_schema) -> list[dict]:
        description = "A key from the merchant dashboard: lk_<8 characters>_<40 characters>."
        return [
            {"type": "http", "scheme": "bearer", "description": description},
            {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": description},
        ]
