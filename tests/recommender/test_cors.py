"""CORS: only on /api/, only for origins a key allows, never with credentials."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recommender.keys import api_key_create

pytestmark = pytest.mark.django_db

BLOG = "https://blog.example"


@pytest.fixture
def blog_key(merchant) -> str:
    return api_key_create(merchant=merchant, name="blog", allowed_origins=BLOG).full_key


def preflight(client, origin: str, path: str):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_a_preflight_from_an_allowed_origin_is_allowed(client, blog_key) -> None:
    response = preflight(client, BLOG, reverse("api:similar", args=[1]))
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == BLOG
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "X-Api-Key" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]


def test_a_preflight_from_an_unlisted_origin_is_refused(client, blog_key) -> None:
    response = preflight(client, "https://evil.example", reverse("api:products"))
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["code"] == "origin_not_allowed"


def test_a_revoked_keys_origins_are_not_allowed(client, merchant) -> None:
    from recommender.keys import api_key_revoke

    new = api_key_create(merchant=merchant, name="old", allowed_origins=BLOG)
    api_key_revoke(new.api_key)
    assert preflight(client, BLOG, reverse("api:products")).status_code == 403


def test_the_call_itself_carries_the_origin_only_for_its_key(client, merchant, blog_key):
    url = reverse("api:products")
    response = client.get(url, headers={"Origin": BLOG, "X-Api-Key": blog_key})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == BLOG
    assert "Retry-After" in response["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response
    # a server-side key (no origins) gets no CORS headers at all
    server_key = api_key_create(merchant=merchant, name="server").full_key
    plain = client.get(url, headers={"X-Api-Key": server_key})
    assert "Access-Control-Allow-Origin" not in plain


def test_pages_outside_the_api_get_no_cors_headers(client, blog_key) -> None:
    response = preflight(client, BLOG, "/")
    assert "Access-Control-Allow-Origin" not in response
    page = client.get("/", headers={"Origin": BLOG})
    assert "Access-Control-Allow-Origin" not in page
