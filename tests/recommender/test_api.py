"""The JSON API: shapes, bounds and hostile uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from recommender.models import ImageVector
from shop.models import Product
from tests.conftest import DEMO_DIR
from tests.imagefactory import PDF, SVG, TEXT, image_bytes, png_bomb, truncated_jpeg

pytestmark = pytest.mark.django_db

PRODUCT_FIELDS = {
    "id", "sku", "title", "price", "currency", "category", "category_slug", "in_stock",
    "image_url", "thumbnail_url", "product_url",
}  # fmt: skip


def similar_url(product_id: int, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("api:similar", args=[product_id]) + (f"?{query}" if query else "")


def test_similar_items_have_the_documented_fields(client, small_catalog) -> None:
    # given
    product = small_catalog[0]
    # when
    response = client.get(similar_url(product.pk, k=4))
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and len(body["results"]) == 4
    assert body["product"]["id"] == product.pk
    assert body["model"].startswith("efficientnet_lite0@")
    assert body["index_version"] == 1
    first = body["results"][0]
    assert set(first) == PRODUCT_FIELDS | {"score"}
    assert first["image_url"].startswith("http://testserver/media/products/")
    assert first["product_url"] == f"http://testserver/products/{first['id']}/"
    assert -1.0 <= first["score"] <= 1.0
    assert product.pk not in [r["id"] for r in body["results"]]


def test_k_defaults_to_twelve_and_is_capped_by_the_catalog(client, small_catalog) -> None:
    body = client.get(similar_url(small_catalog[0].pk)).json()
    assert body["count"] == 11  # 12 products, the query excluded


@pytest.mark.parametrize("k", ["0", "101", "-3", "many", "1.5"])
def test_k_outside_1_to_100_is_a_400(client, small_catalog, k: str) -> None:
    response = client.get(similar_url(small_catalog[0].pk, k=k))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "k" in body["errors"]


def test_an_unknown_product_is_a_404_in_json(client, small_catalog) -> None:
    response = client.get(similar_url(999_999))
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "There is no product with id 999999.",
        "errors": {},
    }


def test_without_an_index_the_api_says_what_to_do(client, db, tmp_path: Path) -> None:
    # given a catalog that was loaded but never indexed
    from shop.services import demo_catalog_load
    from tests.conftest import pick_rows, write_catalog

    ids = demo_catalog_load(write_catalog(tmp_path / "catalog", pick_rows(1)))
    # when
    response = client.get(similar_url(ids[0]))
    # then
    assert response.status_code == 503
    assert response.json()["code"] == "index_unavailable"
    assert "rebuild the index" in response.json()["message"]


def search(client, data: bytes, name: str = "shoe.jpg", **fields):
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(reverse("api:image-search"), {"image": upload, **fields})


def test_image_search_finds_the_product_in_the_photo(client, small_catalog) -> None:
    target = small_catalog[3]
    photo = (DEMO_DIR / "images" / f"{target.sku}.jpg").read_bytes()
    response = search(client, photo, k="3")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["results"][0]["id"] == target.pk
    assert body["results"][0]["score"] > 0.95


def test_image_search_honours_the_category_filter(client, small_catalog) -> None:
    photo = (DEMO_DIR / "images" / f"{small_catalog[0].sku}.jpg").read_bytes()
    body = search(client, photo, category="heels").json()
    assert {r["category_slug"] for r in body["results"]} == {"heels"}


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.jpg", "empty"),
        (TEXT, "notes.txt", "not an image"),
        (truncated_jpeg(), "cut.jpg", "truncated"),
        (png_bomb(), "bomb.png", "more pixels"),
        (png_bomb(7000, 7000), "big.png", "megapixels"),
        (SVG, "vector.svg", "not an image"),
        (PDF, "doc.pdf", "not an image"),
        (image_bytes(Image.new("RGB", (9, 9)), "TIFF"), "scan.tiff", "not supported"),
    ],
    ids=["empty", "text", "truncated", "bomb", "over-pixels", "svg", "pdf", "tiff"],
)
def test_hostile_uploads_get_a_400_that_says_what_is_accepted_and_store_nothing(
    client, small_catalog, settings, data: bytes, name: str, message: str
) -> None:
    # given
    products, vectors = Product.objects.count(), ImageVector.objects.count()
    media = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    # when
    response = search(client, data, name)
    # then
    assert response.status_code == 400
    body = response.json()
    assert message in body["errors"]["image"][0]
    assert "JPEG" in body["message"] or "Resize" in body["message"]
    assert Product.objects.count() == products and ImageVector.objects.count() == vectors
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == media


def test_an_upload_over_the_byte_limit_is_a_400(client, small_catalog, settings) -> None:
    settings.LOOKALIKE_MAX_UPLOAD_BYTES = 1000
    photo = (DEMO_DIR / "images" / f"{small_catalog[0].sku}.jpg").read_bytes()
    response = search(client, photo)
    assert response.status_code == 400
    assert "limit is" in response.json()["errors"]["image"][0]


def test_image_search_without_a_file_is_a_400(client, small_catalog) -> None:
    response = client.post(reverse("api:image-search"), {})
    assert response.status_code == 400
    assert "image" in response.json()["errors"]
