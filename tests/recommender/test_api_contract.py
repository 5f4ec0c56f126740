"""Contract: each endpoint's answer has the shape of the example in the API document."""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from recommender import api_docs as docs
from tests.conftest import DEMO_DIR, catalog_update

pytestmark = pytest.mark.django_db


def shape(value):
    """A JSON value with every leaf replaced by its type (lists by their first item's shape)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


PRODUCT = shape(docs.PRODUCT_EXAMPLE)
RESULTS = shape(docs.RESULTS_EXAMPLE)
ERROR = {"code": "str", "message": "str", "errors": {}}


def test_similar_by_id_and_by_sku_answer_the_same(api, small_catalog) -> None:
    product = small_catalog[4]
    by_id = api.get(reverse("api:similar", args=[product.pk]) + "?k=3&aesthetics_weight=0.3")
    by_sku = api.get(reverse("api:similar-by-sku", args=[product.sku]) + "?k=3")
    assert by_id.status_code == by_sku.status_code == 200
    assert shape(by_id.json()) == {**RESULTS, "product": PRODUCT}
    assert by_id.json() == by_sku.json()


def test_similar_honours_price_and_stock_filters(api, small_catalog) -> None:
    from shop.models import Product

    prices = sorted(p.price for p in small_catalog)
    low, high = prices[3], prices[8]
    url = reverse("api:similar", args=[small_catalog[0].pk])
    body = api.get(f"{url}?k=100&min_price={low}&max_price={high}").json()
    assert body["results"] and all(low <= float(r["price"]) <= high for r in body["results"])
    # out-of-stock products appear only when asked for
    catalog_update(Product.objects.filter(pk=small_catalog[1].pk), stock=0)
    default = {r["id"] for r in api.get(f"{url}?k=100").json()["results"]}
    everything = {r["id"] for r in api.get(f"{url}?k=100&in_stock=false").json()["results"]}
    assert small_catalog[1].pk not in default and small_catalog[1].pk in everything


def test_image_search_takes_multipart_and_base64_alike(api, small_catalog) -> None:
    target = small_catalog[3]
    photo = (DEMO_DIR / "images" / f"{target.sku}.jpg").read_bytes()
    url = reverse("api:image-search")
    from django.core.files.uploadedfile import SimpleUploadedFile

    multipart = api.post(url, {"image": SimpleUploadedFile("a.jpg", photo), "k": "2"})
    encoded = base64.b64encode(photo).decode()
    as_json = api.post(url, {"image_base64": encoded, "k": 2}, content_type="application/json")
    assert multipart.status_code == as_json.status_code == 200
    assert shape(multipart.json()) == RESULTS
    assert as_json.json() == multipart.json()
    assert as_json.json()["results"][0]["id"] == target.pk


def test_image_search_rejects_bad_base64_and_other_bodies(api, small_catalog) -> None:
    url = reverse("api:image-search")
    bad = api.post(url, {"image_base64": "not base64!"}, content_type="application/json")
    assert bad.status_code == 400 and "base64" in bad.json()["errors"]["image_base64"][0]
    text = api.post(url, "hello", content_type="text/plain")
    assert text.status_code == 415 and shape(text.json()) == ERROR
    assert text.json()["code"] == "unsupported_media_type"


def test_product_list_is_paginated_and_detail_matches_it(api, small_catalog) -> None:
    page = api.get(reverse("api:products") + "?page_size=5&category=boots").json()
    assert shape(page) == {"count": "int", "next": "NoneType", "previous": "NoneType",
                           "results": [PRODUCT]}  # fmt: skip
    assert page["count"] == 3 and {p["category_slug"] for p in page["results"]} == {"boots"}
    first = page["results"][0]
    detail = api.get(reverse("api:product", args=[first["id"]])).json()
    assert detail == first
    full = api.get(reverse("api:products") + "?page_size=5").json()
    assert full["count"] == 12 and full["next"].endswith("page=2&page_size=5")


def test_usage_counts_calls_and_errors_per_endpoint(api, small_catalog) -> None:
    api.get(reverse("api:product", args=[small_catalog[0].pk]))
    api.get(reverse("api:product", args=[999_999]))
    body = api.get(reverse("api:usage")).json()
    assert body["key"].startswith("lk_") and body["days"] == 30
    assert body["usage"] == [
        {"day": body["usage"][0]["day"], "endpoint": "product", "calls": 2, "errors": 1}
    ]  # this call is counted once it is answered


def test_health_has_the_documented_shape(client, small_catalog) -> None:
    body = client.get(reverse("api:health")).json()
    assert shape(body) == {"status": "str", "model": "str", "index_version": "int",
                           "indexed_products": "int", "message": "str"}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("put", "/api/v1/products/1/", 405, "method_not_allowed"),
        ("get", "/api/v1/nothing/", 404, "not_found"),
        ("get", "/api/v1/products/?page=99", 404, "not_found"),
        ("get", "/api/v1/products/1/similar/?k=0", 400, "invalid"),
    ],
)
def test_errors_are_json_in_one_shape(api, small_catalog, method, path, status, code) -> None:
    response = getattr(api, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == set(ERROR) and response.json()["code"] == code


def test_a_server_error_is_json_too(api, small_catalog, monkeypatch) -> None:
    # given a fault deep inside the service
    from recommender import apis

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(apis, "similar_to_product", broken)
    api.raise_request_exception = False
    # when
    response = api.get(reverse("api:similar", args=[small_catalog[0].pk]))
    # then
    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "message": "Something went wrong on our side; it was logged. Try again in a moment.",
        "errors": {},
    }


def test_the_highest_documented_price_is_accepted(api, small_catalog) -> None:
    # found by schemathesis: the bound was 99999999, the document (rightly) says 99999999.99
    response = api.get(reverse("api:products") + "?max_price=99999999.99&min_price=0")
    assert response.status_code == 200 and response.json()["count"] == 12
