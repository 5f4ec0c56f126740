"""The catalog store: similar items with no query, as fresh as the database, same answers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from decimal import Decimal
from unittest import mock

import numpy as np
import pytest
import time_machine
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from recommender import catalog_store, columns
from recommender.catalog_store import catalog_changed, live_scorer_version
from recommender.embedding import current_extractor
from recommender.keys import api_key_create
from recommender.models import ImageVector, PhotoScore
from recommender.services import (
    NO_FILTERS,
    Catalog,
    SimilarFilters,
    index_rebuild,
    similar_to_product,
)
from shop.images import StoredImage
from shop.models import Category, Merchant, Product
from shop.services import ProductInput, product_delete, product_update, products_upsert
from tests.conftest import synthetic_product, synthetic_vector

pytestmark = pytest.mark.django_db

N = 40
CATEGORIES = ("boots", "sneakers", "sandals")


@pytest.fixture
def catalog(db) -> list[Product]:
    """40 products of two merchants in three categories: synthetic vectors, indexed; half of
    the photos scored; one product whose photo fields are not the shop's (a legacy import)."""
    extractor = current_extractor()
    rng = np.random.default_rng(7)
    merchants = [Merchant.objects.create(name=f"Shoes {n}", slug=f"shoes-{n}") for n in range(2)]
    categories = [
        Category.objects.create(name=slug.title(), slug=slug, position=n)
        for n, slug in enumerate(CATEGORIES)
    ]
    centres = rng.standard_normal((len(categories), extractor.dim)).astype(np.float32)
    products, vectors = [], []
    for n in range(N):
        image_hash = hashlib.sha256(f"photo {n}".encode()).hexdigest()
        image = f"products/{image_hash[:2]}/{image_hash}.jpg"
        thumbnail = f"products/{image_hash[:2]}/{image_hash}-thumb.jpg"
        if n == 17:
            image_hash, image, thumbnail = "legacy-17", "legacy/17.JPG", "legacy/17 small.jpg"
        products.append(
            synthetic_product(
                image_hash,
                merchant=merchants[n % 2],
                sku=f"S{n:03d}",
                title=f"Shoe {n} ‘Été’",
                category=categories[n % 3],
                price=Decimal(f"{10 + 7 * n}.{n % 100:02d}") if n != 5 else Decimal("0.00"),
                currency="EUR" if n % 4 else "CHF",
                stock=0 if n % 7 == 0 else n,
                image=image,
                thumbnail=thumbnail,
                image_height=600 + n,
            )
        )
        xb = centres[n % 3] + 0.8 * rng.standard_normal(extractor.dim).astype(np.float32)
        vectors.append(synthetic_vector(image_hash, xb))
    Product.objects.bulk_create(products)
    ImageVector.objects.bulk_create(vectors)
    version = live_scorer_version()
    PhotoScore.objects.bulk_create(
        PhotoScore(image_hash=p.image_hash, scorer_version=version, score=20 + 1.5 * n)
        for n, p in enumerate(products)
        if n % 2 == 0
    )
    index_rebuild()
    return list(Product.objects.order_by("pk").select_related("category"))


def committed():
    """Run what a write does when its transaction commits (a test's never does)."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def shown(product_id: int, k: int = 39, **filters) -> list[int]:
    result = similar_to_product(product_id, k, filters=SimilarFilters(**filters))
    return [item.product.pk for item in result.items]


def card(product: Product) -> tuple:
    """What a similar-items list shows of a product."""
    names = catalog_store.CARD_FIELDS
    category = product.category
    return (*(getattr(product, name) for name in names), category.name, category.slug)


# ---------------------------------------------------------------------------- no query


def test_a_similar_call_makes_no_query_once_the_store_is_warm(
    catalog, django_assert_num_queries
) -> None:
    # given a store loaded by a first call
    similar_to_product(catalog[0].pk, 12)
    # when another product's similar items are asked for, with filters
    with django_assert_num_queries(0):
        result = similar_to_product(
            catalog[1].pk, 12, filters=SimilarFilters(category="boots", max_price=Decimal(200))
        )
        cards = [card(item.product) for item in result.items]
    # then the list came from memory, cards and categories included
    assert cards and all(c[-1] == "boots" for c in cards)
    assert result.product.pk == catalog[1].pk


def test_an_api_call_makes_no_query_once_warm(catalog, settings, django_assert_num_queries):
    # given a key (kept by the key cache) and usage written in batches, as in production
    settings.LOOKALIKE_API_USAGE_FLUSH_SECONDS = 60
    settings.LOOKALIKE_API_RESULT_CACHE = "off"
    key = api_key_create(merchant=catalog[0].merchant, name="store")
    api = Client(headers={"Authorization": f"Bearer {key.full_key}"})
    assert api.get(similar_url(catalog[0].pk)).status_code == 200
    # when
    with django_assert_num_queries(0):
        response = api.get(similar_url(catalog[2].pk, category="sandals"))
    # then
    assert response.status_code == 200 and response.json()["count"] > 0


def similar_url(product_id: int, **params) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return reverse("api:similar", args=[product_id]) + (f"?{query}" if query else "")


# ---------------------------------------------------------------------------- freshness


def test_a_product_sold_out_leaves_the_next_list(catalog) -> None:
    query = catalog[1]
    sold = shown(query.pk)[0]
    with committed():
        product_update(Product.objects.get(pk=sold), stock=0)
    assert sold not in shown(query.pk)
    assert sold in shown(query.pk, in_stock=False)


def test_a_hidden_product_leaves_lists_before_the_index_drops_it(catalog) -> None:
    query = catalog[1]
    hidden = shown(query.pk)[0]
    with mock.patch("shop.services._enqueue_index_sync"), committed():
        product_update(Product.objects.get(pk=hidden), is_active=False)
    assert hidden not in shown(query.pk, in_stock=False)
    with pytest.raises(Product.DoesNotExist):
        similar_to_product(hidden, 5)


def test_a_deleted_product_leaves_lists_before_the_index_drops_it(catalog) -> None:
    query = catalog[1]
    deleted = shown(query.pk)[0]
    with mock.patch("shop.services._enqueue_index_sync"), committed():
        product_delete(Product.objects.get(pk=deleted))
    assert deleted not in shown(query.pk, in_stock=False)
    with pytest.raises(Product.DoesNotExist):
        similar_to_product(deleted, 5)


def test_a_renamed_category_shows_in_the_next_list(catalog) -> None:
    query = catalog[0]
    similar_to_product(query.pk, 5)
    # when an operator renames a category in the admin
    boots = Category.objects.get(slug="boots")
    boots.name, boots.slug = "Winter boots", "winter-boots"
    with committed():
        boots.save()
    # then
    result = similar_to_product(query.pk, 39, filters=SimilarFilters(category="winter-boots"))
    assert {item.product.category.name for item in result.items} == {"Winter boots"}
    assert shown(query.pk, category="boots") == []


def test_a_catalog_import_is_reflected_in_the_next_list(catalog) -> None:
    # given a product shown in a list
    query = catalog[1]
    changed = Product.objects.get(pk=shown(query.pk)[0])
    # when an import (bulk writes) reprices, renames and restocks it
    photo = StoredImage(
        changed.image, changed.thumbnail, changed.image_hash, changed.image_width, 600
    )
    item = ProductInput(changed.sku, "Imported title", changed.category, Decimal("1.50"), 3, photo)
    with committed():
        products_upsert(changed.merchant, [item], enqueue=False)
    # then the next list shows it as imported
    product = next(
        i.product for i in similar_to_product(query.pk, 39).items if i.product.pk == changed.pk
    )
    assert (product.title, product.price, product.stock) == ("Imported title", Decimal("1.50"), 3)
    assert product.image_height == 600


def test_a_new_photo_score_reorders_the_next_list(catalog, monkeypatch) -> None:
    from recommender.aesthetics import services as aesthetics

    # given a list with unscored photos
    query = catalog[1]
    unscored = [
        i.product.pk for i in similar_to_product(query.pk, 39).items if i.aesthetics is None
    ]
    assert unscored
    # when the live scorer scores them (a fake one: these products have no photo files)
    scorer = mock.Mock(version=live_scorer_version())
    scorer.score.side_effect = lambda images: np.full(len(images), 99.0)
    monkeypatch.setattr(aesthetics, "live_scorer", lambda: scorer)
    monkeypatch.setattr(aesthetics, "open_stored", lambda path: Image.new("RGB", (64, 64)))
    with committed():
        aesthetics.photos_score(unscored)
    # then every photo in the next list has a score, the new ones 99
    items = similar_to_product(query.pk, 39).items
    assert {i.product.pk: i.aesthetics for i in items if i.product.pk in unscored} == dict.fromkeys(
        unscored, 99.0
    )
    assert all(i.aesthetics is not None for i in items)


def test_a_price_change_takes_a_product_out_of_a_max_price_filter(catalog) -> None:
    query = catalog[1]
    cheap = shown(query.pk, max_price=Decimal("100.00"))[0]
    with committed():
        product_update(Product.objects.get(pk=cheap), price=Decimal("100.01"))
    assert cheap not in shown(query.pk, max_price=Decimal("100.00"))
    assert cheap in shown(query.pk, max_price=Decimal("100.01"))


LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def test_the_max_age_sync_catches_a_write_that_did_not_bump(catalog, settings) -> None:
    query = catalog[1]
    with time_machine.travel(LATER, tick=False) as clock:
        sold = shown(query.pk)[0]
        # when a write path forgets to tell the stores (but stamps the row, as save() does)
        Product.objects.filter(pk=sold).update(stock=0, updated_at=timezone.now())
        clock.shift(settings.LOOKALIKE_CATALOG_STORE_MAX_AGE - 1)
        within = shown(query.pk)
        clock.shift(2)
        after = shown(query.pk)
    # then the list may be that old within the max age, and never past it
    assert sold in within and sold not in after


def test_a_product_deleted_behind_the_stores_back_goes_at_the_max_age_sync(
    catalog, settings
) -> None:
    query = catalog[1]
    with time_machine.travel(LATER, tick=False) as clock:
        gone = shown(query.pk)[0]
        # when a row disappears with no signal and no stamp (raw SQL)
        Product.objects.filter(pk=gone)._raw_delete("default")
        clock.shift(settings.LOOKALIKE_CATALOG_STORE_MAX_AGE + 1)
        # then the count of active products gives it away
        assert gone not in shown(query.pk)


def test_a_full_reload_catches_even_an_update_without_a_stamp(catalog, settings) -> None:
    query = catalog[1]
    with time_machine.travel(LATER, tick=False) as clock:
        sold = shown(query.pk)[0]
        # when a raw update changes stock and nothing else
        Product.objects.filter(pk=sold).update(stock=0)
        clock.shift(settings.LOOKALIKE_CATALOG_STORE_MAX_AGE + 1)
        # then no delta shows it, but the periodic full load does
        assert sold in shown(query.pk)
        clock.shift(1.1 * catalog_store.RELOAD_SECONDS)
        assert sold not in shown(query.pk)


def test_a_full_load_writes_every_cards_json_again(catalog, rf, settings) -> None:
    from recommender.serializers import link_shape, similar_results_json

    with time_machine.travel(LATER, tick=False) as clock:
        # given a store loaded in full: every card's JSON written with it
        query = catalog[1]
        shown_first = shown(query.pk)[0]
        first = catalog_store.catalog_snapshot()
        assert first.derived[link_shape().key].filled == len(first)
        # when a raw update renames a product behind the shop's back, and the periodic full
        # load comes
        Product.objects.filter(pk=shown_first).update(title="Renamed behind the back")
        clock.shift(1.1 * catalog_store.RELOAD_SECONDS)
        result = similar_to_product(query.pk, 39)
        # then the new snapshot has every card's JSON written anew, the renamed one's too
        loaded = catalog_store.catalog_snapshot()
        assert loaded is not first and loaded.derived[link_shape().key].filled == len(loaded)
        body = json.loads(similar_results_json(result, rf.get("/"), result.product))
        titles = {item["id"]: item["title"] for item in body["results"]}
        assert titles[shown_first] == "Renamed behind the back"


def test_a_new_index_version_syncs_the_store(catalog, settings) -> None:
    query = catalog[1]
    sold = shown(query.pk)[0]
    Product.objects.filter(pk=sold).update(stock=0, updated_at=timezone.now())
    index_rebuild()
    assert sold not in shown(query.pk)


# ---------------------------------------------------------------------------- same answers

FILTERS = [
    NO_FILTERS,
    SimilarFilters(in_stock=False),
    SimilarFilters(category="sneakers"),
    SimilarFilters(category="no-such-category"),
    SimilarFilters(merchant_id=-1),
    SimilarFilters(min_price=Decimal("50.01"), max_price=Decimal("150")),
    SimilarFilters(min_price=Decimal("129.17"), max_price=Decimal("129.17"), in_stock=False),
    SimilarFilters(min_price=Decimal("0.001"), max_price=Decimal("99.999")),
    SimilarFilters(max_price=Decimal("0")),
]


def answers(product_ids: list[int], filters: SimilarFilters, merchant_id: int | None) -> list:
    answers = []
    for product_id in product_ids:
        catalog = Catalog(merchant_id=merchant_id)
        if merchant_id is not None:
            filters = SimilarFilters(**{**filters.__dict__, "merchant_id": merchant_id})
        try:
            result = similar_to_product(product_id, 12, filters=filters, catalog=catalog)
        except Product.DoesNotExist:
            answers.append("not found")
            continue
        answers.append(
            (
                card(result.product),
                [(card(i.product), i.score, i.similarity, i.aesthetics) for i in result.items],
            )
        )
    return answers


@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_the_store_and_the_database_give_the_same_answers(catalog, settings, filters) -> None:
    # given every product (one of them hidden) and an unknown id, in the whole catalog and in
    # one merchant's
    Product.objects.filter(pk=catalog[3].pk).update(is_active=False)
    ids = [p.pk for p in catalog] + [10**9]
    lists = []
    for merchant_id in (None, catalog[1].merchant_id):
        # when asked with the store and without
        settings.LOOKALIKE_CATALOG_STORE = False
        expected = answers(ids, filters, merchant_id)
        settings.LOOKALIKE_CATALOG_STORE = True
        got = answers(ids, filters, merchant_id)
        # then
        assert got == expected
        lists += [answer[1] for answer in expected if answer != "not found"]
    if filters.category != "no-such-category" and filters.merchant_id != -1:
        assert any(lists)


def test_the_api_answers_the_same_bytes_with_the_store_and_without(catalog, settings) -> None:
    settings.LOOKALIKE_API_RESULT_CACHE = "off"
    key = api_key_create(merchant=catalog[0].merchant, name="store")
    api = Client(headers={"Authorization": f"Bearer {key.full_key}"})
    calls = [
        similar_url(catalog[0].pk),
        similar_url(catalog[2].pk, k=3, in_stock="false", aesthetics_weight="0.5"),
        similar_url(catalog[4].pk, category="sandals", min_price="20", max_price="200.5"),
        reverse("api:similar-by-sku", args=[catalog[6].sku]) + "?k=100",
    ]
    for url in calls:
        settings.LOOKALIKE_CATALOG_STORE = False
        expected = api.get(url)
        settings.LOOKALIKE_CATALOG_STORE = True
        got = api.get(url)
        assert got.status_code == expected.status_code == 200
        assert got.content == expected.content


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/products/{id}/similar/?k=0",
        "/api/v1/products/{id}/similar/?k=many",
        "/api/v1/products/{id}/similar/?min_price=-1",
        "/api/v1/products/{id}/similar/?max_price=1e9",
        "/api/v1/products/{id}/similar/?category=not%20a%20slug",
        "/api/v1/products/{id}/similar/?in_stock=maybe&aesthetics_weight=2",
        "/api/v1/products/{other}/similar/",
        "/api/v1/products/{other}/similar/?k=0",
        "/api/v1/products/999999999/similar/",
        "/api/v1/products/99999999999999999999/similar/",
        "/api/v1/products/sku/%00%27;--/similar/",
    ],
)
def test_hostile_input_gets_the_same_error_with_the_store_and_without(catalog, settings, url):
    key = api_key_create(merchant=catalog[0].merchant, name="store")
    api = Client(headers={"Authorization": f"Bearer {key.full_key}"})
    url = url.format(id=catalog[0].pk, other=catalog[1].pk)  # catalog[1]: the other merchant's
    settings.LOOKALIKE_CATALOG_STORE = False
    expected = api.get(url)
    settings.LOOKALIKE_CATALOG_STORE = True
    got = api.get(url)
    assert 400 <= got.status_code < 500
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())


# ---------------------------------------------------------------------------- the version


def test_a_write_tells_the_stores_only_when_it_commits(catalog) -> None:
    before = catalog_store.catalog_version()
    with committed() as callbacks:
        product_update(Product.objects.get(pk=catalog[0].pk), stock=1)
        # not yet: a store syncing now would not see the write, and not be told again
        assert catalog_store.catalog_version() == before
    assert callbacks and catalog_store.catalog_version() > before


def test_the_api_reads_the_version_with_the_rate_limits_from_redis(catalog, redis_cache):
    # given a key on Redis, and another process's write (stamped, the version bumped)
    key = api_key_create(merchant=catalog[0].merchant, name="store")
    api = Client(headers={"Authorization": f"Bearer {key.full_key}"})
    query = catalog[2]
    sold = api.get(similar_url(query.pk)).json()["results"][0]["id"]
    with committed():
        Product.objects.filter(pk=sold).update(stock=0, updated_at=timezone.now())
        catalog_changed()
    # when the next call comes, with no separate read of the version
    with mock.patch.object(catalog_store, "catalog_version", side_effect=AssertionError):
        response = api.get(similar_url(query.pk, k=20))
    # then it saw the bump and the write
    assert response.status_code == 200
    assert sold not in [r["id"] for r in response.json()["results"]]
    assert isinstance(caches["default"], RedisCache)


def test_the_version_is_an_integer_redis_can_increment(redis_cache) -> None:
    with committed():
        catalog_changed()
    with committed():
        catalog_changed()
    assert catalog_store.catalog_version() == 2


# ---------------------------------------------------------------------------- the JSON


def test_the_response_builder_gives_what_the_documented_serializer_gives(
    catalog, rf, settings
) -> None:
    from rest_framework.renderers import JSONRenderer

    from recommender.serializers import (
        SimilarToProductSerializer,
        similar_results_data,
        similar_results_json,
    )

    # given a result with scored and unscored photos, the legacy photo paths among them
    result = similar_to_product(catalog[2].pk, 39, filters=SimilarFilters(in_stock=False))
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    request = rf.get("/", HTTP_HOST="shop.example.com:8443", secure=True)
    # when it is made JSON by the builder and by the serializer the OpenAPI document shows
    built = similar_results_data(result, request, result.product)
    documented = SimilarToProductSerializer(
        {
            "model": result.model_id,
            "index_version": result.index_version,
            "count": len(result.items),
            "results": result.items,
            "product": result.product,
        },
        context={"request": request},
    ).data
    # then the bytes are the same, and the same again as the API's direct writer gives them
    assert JSONRenderer().render(built) == JSONRenderer().render(documented)
    assert similar_results_json(result, request, result.product) == JSONRenderer().render(built)
    urls = {item["id"]: item for item in built["results"]}
    for item in result.items:
        shown = urls[item.product.pk]
        assert shown["product_url"] == request.build_absolute_uri(item.product.get_absolute_url())
        assert shown["image_url"] == request.build_absolute_uri(
            default_storage.url(item.product.image)
        )
    assert any(item.product.image == "legacy/17.JPG" for item in result.items)


def test_scores_are_written_with_the_digits_round_and_repr_give() -> None:
    from recommender.serializers import _decimals

    # given halfway and near-halfway values, signs, zeros, the ends of the fast way and
    # beyond it, and many random scores on every scale the API writes
    rng = np.random.default_rng(7)
    values = [0.0, -0.0, 1.0, -1.0, 0.00005, 0.00015, -0.00004, 2.675, 0.12345, 99.99995, 1e-9,
              123456.78905, 99_999_999_999.99, 1e11, -1e11, 3.5e15, 1e16, 2.0**60]  # fmt: skip
    values += rng.uniform(-1, 1, 100_000).tolist() + rng.uniform(0, 100, 50_000).tolist()
    values += (rng.integers(-(10**6), 10**6, 50_000) / 10**5 + 5e-5).tolist()  # halfway
    values += rng.uniform(-1, 1, 20_000).astype(np.float32).astype(float).tolist()
    values += [round(a, 1) for a in rng.uniform(0, 100, 20_000).tolist()]  # aesthetics scores
    expected = [repr(round(v, 4)) for v in values]
    # then each one's text is what the serializer's round(value, 4) gives as JSON, whether
    # written a call's worth at a time or all in one list
    calls = [values[at : at + 12] for at in range(0, len(values), 12)]
    assert [text for call in calls for text in _decimals(call)] == expected
    assert _decimals(values) == expected


# ---------------------------------------------------------------------------- threads


def test_threads_wait_for_one_load_and_all_get_it(monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    # given a store whose load takes a while (no database: a stand-in snapshot)
    loads = []

    def slow_load(scorer):
        time.sleep(0.05)
        loads.append(scorer)
        return SimpleNamespace(scorer=scorer)

    monkeypatch.setattr(catalog_store, "snapshot_load", slow_load)
    monkeypatch.setattr(catalog_store, "live_scorer_version", lambda: "v1")
    monkeypatch.setattr(catalog_store, "_after_load", [])  # nothing to write for a stand-in
    store = catalog_store.CatalogStore()
    # when many threads ask for it at once
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: store.snapshot(version=3), range(32)))
    # then it was loaded once, and every thread got that snapshot
    assert loads == ["v1"] and all(snapshot is got[0] for snapshot in got)


@pytest.mark.parametrize(
    "text",
    [
        'a "quoted" \\ back\\slash',
        "tab\tnew\nline\r\x00\x1f\x7f",
        "line\u2028para\u2029end",
        "émoji 👟 ‘Été’ \ud7ff \ue000 </script><!--",
        "{}[],:null",
    ],
)
def test_the_direct_writer_escapes_what_the_renderer_escapes(catalog, rf, text) -> None:
    from rest_framework.renderers import JSONRenderer

    from recommender.serializers import similar_results_data, similar_results_json

    # given products and a category whose text is hostile JSON
    category = catalog[1].category
    category.name = text
    category.save()
    for product in catalog[:20]:
        Product.objects.filter(pk=product.pk).update(title=text, sku=f"{text[:50]}{product.pk}")
    catalog_store.store_clear()
    result = similar_to_product(catalog[1].pk, 12, filters=SimilarFilters(in_stock=False))
    request = rf.get("/", HTTP_HOST="testserver")
    # when both make it JSON
    direct = similar_results_json(result, request, result.product)
    rendered = JSONRenderer().render(similar_results_data(result, request, result.product))
    # then the bytes are the same, and they read back as the text
    assert direct == rendered
    assert text in {item["title"] for item in json.loads(direct)["results"]}


def test_cards_written_for_one_origin_serve_another(catalog, rf, settings) -> None:
    from rest_framework.renderers import JSONRenderer

    from recommender.serializers import similar_results_data, similar_results_json

    # given a store whose cards' JSON was written for a response to one host
    settings.ALLOWED_HOSTS = ["shop.example.com", "partner.example.org"]
    result = similar_to_product(catalog[3].pk, 12)
    first = rf.get("/", HTTP_HOST="shop.example.com")
    similar_results_json(result, first, result.product)
    # when another host, over https, gets the same products
    second = rf.get("/", HTTP_HOST="partner.example.org", secure=True)
    direct = similar_results_json(result, second, result.product)
    # then its links are its own, byte for byte as the renderer writes them
    assert direct == JSONRenderer().render(similar_results_data(result, second, result.product))
    assert b"https://partner.example.org/" in direct and b"shop.example.com" not in direct


def test_a_new_snapshot_keeps_the_card_json_of_unchanged_rows_only(catalog, rf) -> None:
    from recommender.serializers import card_texts_fill, link_shape, similar_results_json

    # given a store with every card's JSON written (with its full load), its rows written a
    # while ago (a sync reads again what changed in the last few seconds before the previous)
    earlier = timezone.now() - dt.timedelta(minutes=5)
    Product.objects.update(updated_at=earlier)
    PhotoScore.objects.update(created_at=earlier)
    catalog_store.store_clear()
    old = catalog_store.catalog_snapshot()
    assert old.derived[link_shape().key].filled == len(old) and card_texts_fill(old) == 0
    texts = old.derived[link_shape().key].values
    # when one product is renamed
    renamed = catalog[9]
    with committed():
        product_update(Product.objects.get(pk=renamed.pk), title="Renamed ‘boot’")
    new = catalog_store.catalog_snapshot()
    # then the next snapshot keeps the others' JSON as it was and writes the renamed one anew
    assert new is not old
    kept = new.derived[link_shape().key].values
    for product in catalog:
        before, after = old.position(product.pk), new.position(product.pk)
        if product.pk == renamed.pk:
            assert kept[after] is None
        else:
            assert kept[after] is texts[before]
    query = next(p for p in catalog if renamed.pk in shown(p.pk))
    result = similar_to_product(query.pk, 39)
    body = json.loads(similar_results_json(result, rf.get("/"), result.product))
    assert {item["title"] for item in body["results"] if item["id"] == renamed.pk} == {
        "Renamed ‘boot’"
    }
    # and a renamed category starts the cache afresh (every card of it reads differently)
    boots = Category.objects.get(slug="boots")
    boots.name = "Winter boots"
    with committed():
        boots.save()
    assert catalog_store.catalog_snapshot().derived == {}


def test_a_card_with_links_that_depend_on_the_request_is_written_for_each(
    catalog, rf, settings
) -> None:
    from rest_framework.renderers import JSONRenderer

    from recommender.serializers import link_shape, similar_results_data, similar_results_json

    # given photos served from a scheme-relative address (its scheme is the request's)
    settings.MEDIA_URL = "//cdn.example.net/media/"
    result = similar_to_product(catalog[3].pk, 12)
    for secure in (False, True):
        request = rf.get("/", secure=secure)
        # when the API writes the list over http, then over https
        direct = similar_results_json(result, request, result.product)
        # then each gets its own scheme, as the renderer writes it, and no card is kept
        rendered = JSONRenderer().render(similar_results_data(result, request, result.product))
        assert direct == rendered
        scheme = "https" if secure else "http"
        assert f'"image_url":"{scheme}://cdn.example.net/media/'.encode() in direct
    cache = catalog_store.catalog_snapshot().derived[link_shape().key]
    assert cache.filled == 0


@pytest.mark.parametrize("dense", [True, False], ids=["table", "binary search"])
def test_candidates_are_found_by_id_with_a_table_or_by_binary_search(catalog, dense) -> None:
    # given the store's snapshot, its ids looked up in a table or (too sparse) by binary search
    snapshot = catalog_store.catalog_snapshot()
    assert snapshot.where is not None
    if not dense:
        snapshot.where = None
    ids = snapshot.ids
    # when ids of every kind are looked up: present, absent, beyond both ends, faiss's -1
    asked = np.array(
        [ids[3], -1, ids[0] - 1, ids[-1] + 1, ids[-1] + 2, 2**62, ids[-1], -(2**40), ids[7]]
    )
    indices, positions = snapshot.shown(asked, NO_FILTERS, exclude={int(ids[7])})
    # then only the ones here are found, where they are
    assert indices.tolist() == [0, 6] and positions.tolist() == [3, len(ids) - 1]
    assert snapshot.position(int(ids[5])) == 5
    assert [snapshot.position(i) for i in (-1, int(ids[-1]) + 1, 2**63 - 1)] == [-1, -1, -1]
    # and with the key's merchant and in stock (one gather), only its stocked products are
    merchant = int(snapshot.merchant[3])
    everyone = np.concatenate([ids, [-1, ids[-1] + 1, 2**62]])
    gated, at = snapshot.shown(everyone, SimilarFilters(merchant_id=merchant), exclude=set())
    expected = [
        i for i in range(len(ids)) if snapshot.merchant[i] == merchant and snapshot.stock[i] > 0
    ]
    assert gated.tolist() == at.tolist() == expected
    assert 0 < len(expected) < len(ids) and (snapshot.stock == 0).any()
    for nobody in (-1, 0, 10**9):
        assert not snapshot.shown(everyone, SimilarFilters(merchant_id=nobody), set())[0].size
    # and a table is made only while ids are dense enough for one
    assert columns.id_table(np.array([1, 2, 10**9])) is None
