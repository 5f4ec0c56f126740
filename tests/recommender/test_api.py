"""The JSON API with a key: shapes, bounds and hostile uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recommender.models import ImageVector
from shop.models import Product
from tests.conftest import DEMO_DIR
from tests.imagefactory import hostile_uploads

pytestmark = pytest.mark.django_db

PRODUCT_FIELDS = {
    "id", "sku", "title", "price", "currency", "category", "category_slug", "in_stock",
    "image_url", "thumbnail_url", "product_url",
}  # fmt: skip


def similar_url(product_id: int, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("api:similar", args=[product_id]) + (f"?{query}" if query else "")


def test_similar_items_have_the_documented_fields(api, small_catalog) -> None:
    # given
    product = small_catalog[0]
    # when
    response = api.get(similar_url(product.pk, k=4))
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and len(body["results"]) == 4
    assert body["product"]["id"] == product.pk
    assert body["model"].startswith("efficientnet_lite0@")
    assert body["index_version"] == 1
    first = body["results"][0]
    assert set(first) == PRODUCT_FIELDS | {"score", "similarity", "aesthetics"}
    assert first["aesthetics"] is None and first["score"] == first["similarity"]
    assert first["image_url"].startswith("http://testserver/media/products/")
    assert first["product_url"] == f"http://testserver/products/{first['id']}/"
    assert -1.0 <= first["score"] <= 1.0
    assert product.pk not in [r["id"] for r in body["results"]]


def test_k_defaults_to_twelve_and_is_capped_by_the_catalog(api, small_catalog) -> None:
    body = api.get(similar_url(small_catalog[0].pk)).json()
    assert body["count"] == 11  # 12 products, the query excluded


@pytest.mark.parametrize("k", ["0", "101", "-3", "many", "1.5"])
def test_k_outside_1_to_100_is_a_400(api, small_catalog, k: str) -> None:
    response = api.get(similar_url(small_catalog[0].pk, k=k))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "k" in body["errors"]


def test_an_unknown_product_is_a_404_in_json(api, small_catalog) -> None:
    response = api.get(similar_url(999_999))
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "There is no product with id 999999 in this catalog.",
        "errors": {},
    }


def test_without_an_index_the_api_says_what_to_do(client, db, tmp_path: Path) -> None:
    # given a catalog that was loaded but never indexed
    from recommender.keys import api_key_create
    from shop.models import Merchant
    from shop.services import demo_catalog_load
    from tests.conftest import pick_rows, write_catalog

    ids = demo_catalog_load(write_catalog(tmp_path / "catalog", pick_rows(1)))
    key = api_key_create(merchant=Merchant.objects.get(), name="tests").full_key
    # when
    response = client.get(similar_url(ids[0]), headers={"Authorization": f"Bearer {key}"})
    # then
    assert response.status_code == 503
    assert response.json()["code"] == "index_unavailable"
    assert "rebuild the index" in response.json()["message"]


def search(api, data: bytes, name: str = "shoe.jpg", **fields):
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return api.post(reverse("api:image-search"), {"image": upload, **fields})


def test_image_search_finds_the_product_in_the_photo(api, small_catalog) -> None:
    target = small_catalog[3]
    photo = (DEMO_DIR / "images" / f"{target.sku}.jpg").read_bytes()
    response = search(api, photo, k="3")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["results"][0]["id"] == target.pk
    assert body["results"][0]["score"] > 0.95


def test_image_search_honours_the_category_filter(api, small_catalog) -> None:
    photo = (DEMO_DIR / "images" / f"{small_catalog[0].sku}.jpg").read_bytes()
    body = search(api, photo, category="heels").json()
    assert {r["category_slug"] for r in body["results"]} == {"heels"}


@pytest.mark.parametrize(("data", "name", "message"), hostile_uploads())
def test_hostile_uploads_get_a_400_that_says_what_is_accepted_and_store_nothing(
    api, small_catalog, settings, data: bytes, name: str, message: str
) -> None:
    # given
    products, vectors = Product.objects.count(), ImageVector.objects.count()
    media = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    # when
    response = search(api, data, name)
    # then
    assert response.status_code == 400
    body = response.json()
    assert message in body["errors"]["image"][0]
    assert "JPEG" in body["message"] or "Resize" in body["message"]
    assert Product.objects.count() == products and ImageVector.objects.count() == vectors
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == media


def test_an_upload_over_the_byte_limit_is_a_400(api, small_catalog, settings) -> None:
    settings.LOOKALIKE_MAX_UPLOAD_BYTES = 1000
    photo = (DEMO_DIR / "images" / f"{small_catalog[0].sku}.jpg").read_bytes()
    response = search(api, photo)
    assert response.status_code == 400
    assert "limit is" in response.json()["errors"]["image"][0]


def test_image_search_without_a_file_is_a_400(api, small_catalog) -> None:
    response = api.post(reverse("api:image-search"), {})
    assert response.status_code == 400
    assert "image" in response.json()["errors"]


def test_a_product_whose_photo_cannot_be_embedded_is_a_409_with_the_reason(
    api, small_catalog
) -> None:
    # given a product without a vector whose stored photo is damaged, so the index (rebuilt
    # since) does not hold it either
    from django.core.files.storage import default_storage

    from recommender.services import index_rebuild

    product = small_catalog[2]
    ImageVector.objects.filter(image_hash=product.image_hash).delete()
    with default_storage.open(product.image, "wb") as handle:
        handle.write(b"not a jpeg")
    index_rebuild()
    # when
    response = api.get(similar_url(product.pk))
    # then
    assert response.status_code == 409
    assert "could not be read" in response.json()["message"]
    # and the page says so instead of failing
    page = api.get(product.get_absolute_url())
    assert page.status_code == 200
    assert "not available right now" in page.content.decode()


def test_an_empty_index_gives_an_empty_list(api, small_catalog) -> None:
    from recommender.services import index_rebuild

    Product.objects.exclude(pk=small_catalog[0].pk).update(is_active=False)
    Product.objects.filter(pk=small_catalog[0].pk).update(is_active=False)
    index_rebuild()
    Product.objects.filter(pk=small_catalog[0].pk).update(is_active=True)
    body = api.get(similar_url(small_catalog[0].pk)).json()
    assert body["count"] == 0 and body["results"] == []


def test_an_unknown_api_path_is_a_json_404(client, db) -> None:
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and "find that page" in page.content.decode()
