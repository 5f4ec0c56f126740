"""Storefront pages through Django's test client."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from recommender.models import ImageVector
from shop.models import Product
from tests.conftest import DEMO_DIR
from tests.imagefactory import hostile_uploads

pytestmark = pytest.mark.django_db


def test_the_catalog_lists_products_with_thumbnails(client, small_catalog) -> None:
    response = client.get(reverse("shop:catalog"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="card') == 12
    assert small_catalog[0].thumbnail_url in html
    assert "12 products" in html


def test_the_catalog_filters_by_category(client, small_catalog) -> None:
    response = client.get(reverse("shop:catalog"), {"category": "boots"})
    products = list(response.context["page"].object_list)
    assert len(products) == 3
    assert {p.category.slug for p in products} == {"boots"}


def test_the_catalog_searches_titles(client, small_catalog) -> None:
    product = small_catalog[4]
    word = product.title.split()[-1].strip("'")
    response = client.get(reverse("shop:catalog"), {"q": word})
    assert product in response.context["page"].object_list
    assert all(word.lower() in p.title.lower() for p in response.context["page"].object_list)


def test_the_catalog_paginates(client, small_catalog, settings) -> None:
    settings.LOOKALIKE_PAGE_SIZE = 5
    first = client.get(reverse("shop:catalog"))
    last = client.get(reverse("shop:catalog"), {"page": 3})
    assert len(first.context["page"].object_list) == 5
    assert len(last.context["page"].object_list) == 2
    assert "Page 3 of 3" in last.content.decode()
    # a page number out of range shows the last page rather than an error
    assert client.get(reverse("shop:catalog"), {"page": "99"}).status_code == 200


def test_the_product_page_shows_details_and_a_similar_rail(client, small_catalog) -> None:
    product = small_catalog[0]
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert escape(product.title) in html and str(product.price) in html
    assert "Visually similar" in html
    items = response.context["result"].items
    assert len(items) == 11
    assert product.pk not in [item.product.pk for item in items]
    assert "% alike" in html
    # every photo links to its product's similar items (search by click)
    for item in items:
        assert f'href="{item.product.get_similar_url()}"' in html


def test_the_similar_page_pivots_on_a_product(client, small_catalog) -> None:
    product = small_catalog[7]
    response = client.get(product.get_similar_url(), {"category": "sneakers"})
    assert response.status_code == 200
    assert escape(product.title) in response.content.decode()
    assert {i.product.category.slug for i in response.context["result"].items} == {"sneakers"}


def test_an_unknown_product_is_a_404(client, small_catalog) -> None:
    assert client.get(reverse("shop:product", args=[999_999])).status_code == 404
    assert client.get(reverse("shop:similar", args=[999_999])).status_code == 404


def test_a_deactivated_product_is_a_404(client, small_catalog) -> None:
    product = small_catalog[0]
    Product.objects.filter(pk=product.pk).update(is_active=False)
    assert client.get(product.get_absolute_url()).status_code == 404


def upload(client, data: bytes, name: str = "shoe.jpg", **fields):
    photo = SimpleUploadedFile(name, data, content_type="image/jpeg")
    return client.post(reverse("shop:photo-search"), {"photo": photo, **fields})


def test_the_photo_search_form_offers_picker_camera_and_drop(client, db) -> None:
    html = client.get(reverse("shop:photo-search")).content.decode()
    assert 'accept="image/*"' in html
    assert 'capture="environment"' in html
    assert 'id="dropzone"' in html


def test_searching_by_photo_shows_the_photo_and_the_matching_product(client, small_catalog) -> None:
    target = small_catalog[9]
    response = upload(client, (DEMO_DIR / "images" / f"{target.sku}.jpg").read_bytes())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="query-photo"' in html and "data:image/jpeg;base64," in html
    assert response.context["result"].items[0].product == target


def test_the_preview_shown_back_leaves_the_photo_searched_with_whole() -> None:
    import base64
    import io

    from PIL import Image

    from shop.views import _data_uri

    # given an uploaded photo, decoded (upright RGB: the preview is drawn from it itself)
    photo = Image.new("RGB", (1200, 900), (30, 120, 200))
    # when its preview is made for the results page
    uri = _data_uri(photo)
    # then the preview is small, and the photo the search embeds is still the whole one
    preview = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert preview.size == (480, 360)
    assert photo.size == (1200, 900)


@pytest.mark.parametrize(("data", "name", "message"), hostile_uploads())
def test_a_bad_photo_gets_a_400_page_that_says_what_is_accepted(
    client, small_catalog, settings, data: bytes, name: str, message: str
) -> None:
    # given
    vectors = ImageVector.objects.count()
    media = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    # when
    response = upload(client, data, name)
    # then
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "JPEG" in html
    assert ImageVector.objects.count() == vectors
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == media


def test_a_photo_search_without_a_file_asks_for_one(client, db) -> None:
    response = client.post(reverse("shop:photo-search"), {})
    assert response.status_code == 400
    assert "Choose a photo" in response.content.decode()


def test_product_photos_are_served(client, small_catalog) -> None:
    product = small_catalog[0]
    for url in (product.image_url, product.thumbnail_url):
        response = client.get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"


def test_a_photo_over_the_byte_limit_gets_a_400_page(client, small_catalog, settings) -> None:
    settings.LOOKALIKE_MAX_UPLOAD_BYTES = 1000
    response = upload(client, (DEMO_DIR / "images" / f"{small_catalog[0].sku}.jpg").read_bytes())
    assert response.status_code == 400
    assert "the limit is 0 MB" not in response.content.decode()
    assert "limit is" in response.content.decode()


def test_the_upload_page_states_the_configured_limit(client, db, settings) -> None:
    settings.LOOKALIKE_MAX_UPLOAD_BYTES = 5_000_000
    assert "up to 5 MB" in client.get(reverse("shop:photo-search")).content.decode()
