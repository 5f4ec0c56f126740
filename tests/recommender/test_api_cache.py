"""The partner API's caches (answers, keys) and its benchmark-only no-op endpoints."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recommender.keys import api_key_revoke
from recommender.models import ApiKey
from recommender.services import index_rebuild, similar_to_product
from shop.models import Product
from tests.conftest import catalog_update

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def similar_url(product_id: int, **params) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return reverse("api:similar", args=[product_id]) + (f"?{query}" if query else "")


# More items than the default: worked out per call, so cached (an answer with the default
# parameters is ranked ahead, and not cached).
PER_CALL = {"k": 20}


def no_search():
    """Make any computed (not cached) answer fail the test."""
    return mock.patch("recommender.apis.similar_to_product", side_effect=AssertionError("miss"))


@pytest.mark.parametrize("mode", ["local", "shared"])
def test_a_cached_answer_is_the_same_as_a_computed_one(api, small_catalog, settings, mode):
    # given an answer computed with the cache off
    settings.LOOKALIKE_API_RESULT_CACHE = "off"
    computed = api.get(similar_url(small_catalog[0].pk, **PER_CALL))
    settings.LOOKALIKE_API_RESULT_CACHE = mode
    api.get(similar_url(small_catalog[0].pk, **PER_CALL))
    # when the same call is answered without searching
    with no_search():
        cached = api.get(similar_url(small_catalog[0].pk, **PER_CALL))
    # then
    assert computed.status_code == cached.status_code == 200
    assert cached["Content-Type"] == computed["Content-Type"] == "application/json"
    assert cached.content == computed.content


@pytest.mark.parametrize("params", [{}, {"k": 5}, {"aesthetics_weight": 0.15}])
def test_an_answer_ranked_ahead_is_not_cached(api, small_catalog, settings, params) -> None:
    # given the answer cache on and a call with the default parameters (or fewer items)
    assert settings.LOOKALIKE_API_RESULT_CACHE == "local"
    first = api.get(similar_url(small_catalog[0].pk, **params))
    # when it comes again, it is written from the ranking again, not read from the cache
    with mock.patch("recommender.apis.similar_to_product", wraps=similar_to_product) as made:
        again = api.get(similar_url(small_catalog[0].pk, **params))
    assert made.call_count == 1
    assert again.status_code == first.status_code == 200
    assert again.content == first.content


def test_parameters_and_the_sku_lookup_have_answers_of_their_own(api, small_catalog) -> None:
    product = small_catalog[0]
    api.get(similar_url(product.pk, k=5))
    # when other parameters (or the SKU path) are asked for, they are computed
    fewer = api.get(similar_url(product.pk, k=2)).json()
    boots = api.get(similar_url(product.pk, k=5, category="boots")).json()
    by_sku = api.get(reverse("api:similar-by-sku", args=[product.sku]) + "?k=5").json()
    # then
    assert fewer["count"] == 2
    assert {item["category_slug"] for item in boots["results"]} == {"boots"}
    assert by_sku["results"] == api.get(similar_url(product.pk, k=5)).json()["results"]


def test_a_new_index_version_is_answered_at_once(api, small_catalog) -> None:
    # given a cached answer
    before = api.get(similar_url(small_catalog[0].pk, **PER_CALL)).json()
    # when the index gets a new version
    manifest = index_rebuild()
    after = api.get(similar_url(small_catalog[0].pk, **PER_CALL)).json()
    # then the answer is computed on it
    assert after["index_version"] == manifest.version == before["index_version"] + 1


def test_product_changes_show_once_the_cache_ttl_has_passed(api, small_catalog, settings) -> None:
    ttl = settings.LOOKALIKE_API_RESULT_CACHE_SECONDS
    query = small_catalog[0]
    with time_machine.travel(START, tick=False) as clock:
        first = api.get(similar_url(query.pk, **PER_CALL)).json()["results"]
        repriced, sold_out = first[0]["id"], first[1]["id"]
        # when a result is repriced and another sells out
        catalog_update(Product.objects.filter(pk=repriced), price="1.00")
        catalog_update(Product.objects.filter(pk=sold_out), stock=0)
        clock.shift(ttl - 1)
        within = api.get(similar_url(query.pk, **PER_CALL)).json()["results"]
        clock.shift(2)
        after = api.get(similar_url(query.pk, **PER_CALL)).json()["results"]
    # then the answer may be that old within the TTL, and never past it
    assert within == first
    assert {r["id"]: r["price"] for r in after}[repriced] == "1.00"
    assert sold_out not in {r["id"] for r in after}


def test_a_product_made_inactive_is_a_404_once_the_ttl_has_passed(api, small_catalog, settings):
    query = small_catalog[0]
    with time_machine.travel(START, tick=False) as clock:
        assert api.get(similar_url(query.pk, **PER_CALL)).status_code == 200
        catalog_update(Product.objects.filter(pk=query.pk), is_active=False)
        clock.shift(settings.LOOKALIKE_API_RESULT_CACHE_SECONDS + 1)
        response = api.get(similar_url(query.pk, **PER_CALL))
    assert response.status_code == 404


def test_without_the_cache_every_call_is_computed(api, small_catalog, settings) -> None:
    settings.LOOKALIKE_API_RESULT_CACHE = "off"
    api.get(similar_url(small_catalog[0].pk, **PER_CALL))
    with no_search(), pytest.raises(AssertionError, match="miss"):
        api.get(similar_url(small_catalog[0].pk, **PER_CALL))


def test_invalid_parameters_of_an_unknown_product_are_still_a_404(api, small_catalog) -> None:
    response = api.get(similar_url(10**9, k=0))
    assert response.status_code == 404


def test_queries_per_call_do_not_grow_with_k(api, small_catalog, settings) -> None:
    # given the cache off, so that every call searches; the key is read once and kept
    settings.LOOKALIKE_API_RESULT_CACHE = "off"
    api.get(similar_url(small_catalog[0].pk, k=1))
    counts = {}
    for k in (1, 10):
        with CaptureQueriesContext(connection) as queries:
            assert api.get(similar_url(small_catalog[1].pk, k=k)).status_code == 200
        counts[k] = len(queries)
    # then: product, its vector, candidates, their scores, the usage row (no query per item)
    assert counts[1] == counts[10] <= 5


def test_a_key_revoked_elsewhere_stops_working_within_the_key_ttl(
    api, api_key, small_catalog, settings
) -> None:
    ttl = settings.LOOKALIKE_API_KEY_CACHE_SECONDS
    url = reverse("api:product", args=[small_catalog[0].pk])
    with time_machine.travel(START, tick=False) as clock:
        assert api.get(url).status_code == 200
        # when another process revokes the key (this process's cache is not told)
        ApiKey.objects.filter(pk=api_key.api_key.pk).update(revoked_at=timezone.now())
        clock.shift(ttl - 1)
        within = api.get(url)
        clock.shift(2)
        after = api.get(url)
    # then
    assert within.status_code == 200
    assert after.status_code == 401 and after.json()["code"] == "revoked_api_key"


def test_a_key_revoked_in_this_process_stops_working_at_once(api, api_key, small_catalog):
    url = reverse("api:product", args=[small_catalog[0].pk])
    assert api.get(url).status_code == 200
    api_key_revoke(ApiKey.objects.get(pk=api_key.api_key.pk))
    assert api.get(url).json()["code"] == "revoked_api_key"


def test_without_the_key_cache_a_revocation_shows_at_once(api, api_key, small_catalog, settings):
    settings.LOOKALIKE_API_KEY_CACHE_SECONDS = 0
    url = reverse("api:product", args=[small_catalog[0].pk])
    assert api.get(url).status_code == 200
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(revoked_at=timezone.now())
    assert api.get(url).status_code == 401


@pytest.mark.parametrize("name", ["api:bench-noop", "api:bench-noop-keyed"])
def test_the_no_op_endpoints_are_absent_unless_switched_on(client, db, settings, name) -> None:
    settings.LOOKALIKE_API_BENCH_ENDPOINTS = False
    response = client.get(reverse(name))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_bare_no_op_answers_anyone(client, db, settings) -> None:
    settings.LOOKALIKE_API_BENCH_ENDPOINTS = True
    response = client.get(reverse("api:bench-noop"))
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_the_keyed_no_op_needs_a_key_and_counts_as_a_call(
    api, client, api_key, settings, small_catalog
) -> None:
    settings.LOOKALIKE_API_BENCH_ENDPOINTS = True
    assert client.get(reverse("api:bench-noop-keyed")).status_code == 401
    assert api.get(reverse("api:bench-noop-keyed")).json() == {"ok": True}
    usage = api.get(reverse("api:usage")).json()["usage"]
    assert {"endpoint": "bench-noop-keyed", "calls": 1, "errors": 0}.items() <= usage[0].items()


def test_the_no_op_endpoints_are_not_in_the_schema(client, db, settings) -> None:
    settings.LOOKALIKE_API_BENCH_ENDPOINTS = True
    schema = Client().get("/api/schema/?format=json").json()
    assert not [path for path in schema["paths"] if "bench" in path]
