"""Merchant pages: sign-in, and each merchant sees only their own catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from shop.models import Merchant, Product
from tests.conftest import queued
from tests.imagefactory import hostile_uploads

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_merchants(small_catalog):
    users = get_user_model().objects
    first = Merchant.objects.get()
    first.user = users.create_user("first", password="pw-first-123")
    first.save()
    second = Merchant.objects.create(name="Second", slug="second")
    second.user = users.create_user("second", password="pw-second-123")
    second.save()
    moved = small_catalog[:2]
    Product.objects.filter(pk__in=[p.pk for p in moved]).update(merchant=second)
    return first, second, moved


def test_it_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("merchant:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_refuses_accounts_without_a_catalog(client):
    get_user_model().objects.create_user("shopper", password="pw-shopper-123")
    client.login(username="shopper", password="pw-shopper-123")
    response = client.get(reverse("merchant:dashboard"))
    assert response.status_code == 403
    assert b"not linked to a merchant" in response.content


def test_a_merchant_sees_only_their_own_products(client, two_merchants):
    first, second, moved = two_merchants
    client.login(username="second", password="pw-second-123")
    response = client.get(reverse("merchant:dashboard"))
    skus = [p.sku for p in response.context["page"]]
    assert sorted(skus) == sorted(p.sku for p in moved)
    client.login(username="first", password="pw-first-123")
    response = client.get(reverse("merchant:dashboard"))
    assert response.context["page"].paginator.count == len(Product.objects.filter(merchant=first))
    assert not {p.sku for p in moved} & {p.sku for p in response.context["page"]}


def similar_ids(product) -> list[int]:
    from recommender.services import similar_to_product

    return [item.product.pk for item in similar_to_product(product.pk, k=11).items]


@pytest.fixture
def signed_in(client, small_catalog):
    merchant = Merchant.objects.get()
    merchant.user = get_user_model().objects.create_user("owner", password="pw-owner-123")
    merchant.save()
    client.login(username="owner", password="pw-owner-123")
    return client


def edit_data(product, **changes) -> dict:
    data = {
        "title": product.title,
        "description": product.description,
        "category": product.category_id,
        "price": str(product.price),
        "currency": product.currency,
        "stock": product.stock,
        "is_active": "on" if product.is_active else "",
    }
    return {**data, **changes}


def test_a_merchant_changes_title_and_price(signed_in, small_catalog):
    product = small_catalog[0]
    url = reverse("merchant:product-edit", args=[product.pk])
    response = signed_in.post(url, edit_data(product, title="Renamed", price="12.50"))
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.title, str(product.price)) == ("Renamed", "12.50")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": "12,50"}, "a dot before the cents"),
        ({"stock": "-3"}, "cannot be negative"),
        ({"currency": "euro"}, "three-letter currency code"),
        ({"category": "999999"}, "Choose one of the listed categories"),
        ({"title": ""}, "This field is required"),
    ],
)
def test_bad_edits_are_a_400_that_says_what_to_fix_and_change_nothing(
    signed_in, small_catalog, changes, message
):
    product = small_catalog[0]
    url = reverse("merchant:product-edit", args=[product.pk])
    response = signed_in.post(url, edit_data(product, **changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    before = (product.title, product.price, product.stock)
    product.refresh_from_db()
    assert (product.title, product.price, product.stock) == before


@pytest.mark.parametrize(("data", "name", "message"), hostile_uploads())
def test_a_hostile_photo_is_a_400_and_the_old_photo_is_kept(
    signed_in, small_catalog, data, name, message
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    product = small_catalog[0]
    url = reverse("merchant:product-edit", args=[product.pk])
    upload = SimpleUploadedFile(name, data)
    response = signed_in.post(url, {**edit_data(product), "photo": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    refreshed = Product.objects.get(pk=product.pk)
    assert (refreshed.image_hash, refreshed.embedding_status) == (
        product.image_hash,
        product.embedding_status,
    )


def test_out_of_stock_leaves_similar_results_at_once_and_restock_brings_it_back(
    signed_in, small_catalog, django_capture_on_commit_callbacks
):
    query = small_catalog[0]
    neighbour = Product.objects.get(pk=similar_ids(query)[0])
    url = reverse("merchant:product-stock", args=[neighbour.pk])
    # (each page's transaction commits, as it does outside a test)
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(url, {"stock": "0"})
    assert neighbour.pk not in similar_ids(query)
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(url, {"stock": "4"})
    assert neighbour.pk in similar_ids(query)
    assert Product.objects.get(pk=neighbour.pk).stock == 4


def test_delete_removes_the_product_from_results_and_from_the_index(
    signed_in, small_catalog, settings, django_capture_on_commit_callbacks
):
    from recommender import index as vector_index
    from recommender.indexing import indexed_ids

    query = small_catalog[0]
    doomed = similar_ids(query)[0]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = signed_in.post(reverse("merchant:product-delete", args=[doomed]))
    assert response.status_code == 302 and len(queued(callbacks)) == 1
    assert not Product.objects.filter(pk=doomed).exists()
    assert doomed not in similar_ids(query)
    # without a broker the queued index update ran in-process on commit
    index, _ = vector_index.load_index(settings.LOOKALIKE_INDEX_DIR)
    assert doomed not in set(indexed_ids(index).tolist())


def test_a_new_photo_is_embedded_and_changes_the_neighbours(
    signed_in, small_catalog, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from shop.models import EmbeddingStatus

    # given two products of different kinds
    a, b = small_catalog[0], small_catalog[-1]
    assert a.category_id != b.category_id
    # when A gets a copy of B's photo
    photo = SimpleUploadedFile("new.jpg", (Path(settings_media()) / b.image).read_bytes())
    url = reverse("merchant:product-edit", args=[a.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = signed_in.post(url, {**edit_data(a), "photo": photo})
    assert response.status_code == 302 and len(queued(callbacks)) == 1
    # then A is re-embedded and is now B's closest match
    a.refresh_from_db()
    assert a.embedding_status == EmbeddingStatus.READY
    assert similar_ids(b)[0] == a.pk


def settings_media():
    from django.conf import settings

    return settings.MEDIA_ROOT


def test_a_merchant_cannot_touch_another_merchants_product(client, two_merchants):
    first, second, moved = two_merchants
    theirs = Product.objects.filter(merchant=first).first()
    client.login(username="second", password="pw-second-123")
    for name in ("merchant:product-edit", "merchant:product-delete"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    response = client.post(reverse("merchant:product-stock", args=[theirs.pk]), {"stock": "0"})
    assert response.status_code == 404
    assert client.post(reverse("merchant:product-delete", args=[theirs.pk])).status_code == 404
    assert Product.objects.get(pk=theirs.pk).stock > 0
