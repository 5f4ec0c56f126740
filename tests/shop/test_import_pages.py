"""The import pages: upload, a job's live status, past imports, and hostile uploads."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from shop.images import decode_upload, store_image
from shop.models import ImportJob, ImportStatus, Merchant, Product
from shop.services import category_get_or_create, product_upsert
from tests.imagefactory import jpeg_bytes
from tests.shop.catalogfiles import csv_bytes, photos, row, zip_bytes

pytestmark = pytest.mark.django_db
IMPORT = reverse("merchant:import")


def merchant_with_login(client, username: str) -> Merchant:
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-123")
    merchant = Merchant.objects.create(name=username.title(), slug=username, user=user)
    client.login(username=username, password=f"pw-{username}-123")
    return merchant


@pytest.fixture
def merchant(client) -> Merchant:
    category_get_or_create("Sneakers")
    return merchant_with_login(client, "shed")


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def good_files() -> dict:
    return {
        "csv_file": upload("catalog.csv", csv_bytes([row("A1", "a.jpg"), row("A2", "b.jpg")])),
        "zip_file": upload("photos.zip", zip_bytes(photos("a.jpg", "b.jpg"))),
    }


def test_an_upload_becomes_a_job_whose_page_and_status_show_its_progress(
    client, merchant, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(IMPORT, good_files())
    # then
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.merchant == merchant and job.file_names == ["catalog.csv", "photos.zip"]
    page = client.get(job.get_absolute_url())
    assert page.status_code == 200 and b'aria-valuenow="100"' in page.content
    assert b"js/import-progress.js" in page.content
    # and the new photos' quality is shown, weakest first, for the merchant to act on
    photos = page.context["photos"]
    assert sorted(p.sku for p in photos) == ["A1", "A2"]
    assert photos[0].photo_quality.score <= photos[1].photo_quality.score
    assert page.content.count(b'data-testid="photo-quality"') == 2
    status = client.get(reverse("merchant:import-job-status", args=[job.pk])).json()
    assert status["status"] == "finished" and status["done"] and status["percent"] == 100
    assert (status["rows_parsed"], status["photos_embedded"], status["rows_failed"]) == (2, 2, 0)
    listing = client.get(IMPORT)
    assert list(listing.context["jobs"]) == [job]


def test_the_job_page_lists_failed_rows_with_their_reasons(
    client, merchant, django_capture_on_commit_callbacks
):
    files = good_files()
    files["csv_file"] = upload(
        "c.csv", csv_bytes([row("A1", "a.jpg"), row("A2", "a.jpg", price="x")])
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(IMPORT, files)
    page = client.get(ImportJob.objects.get().get_absolute_url())
    assert b"&#x27;x&#x27; is not a price" in page.content
    assert page.context["progress"]["rows_failed"] == 1


def test_a_merchant_sees_only_their_own_imports(
    client, merchant, django_capture_on_commit_callbacks
):
    # given: the first merchant's import
    with django_capture_on_commit_callbacks(execute=True):
        client.post(IMPORT, good_files())
    job = ImportJob.objects.get()
    # when: another merchant signs in
    merchant_with_login(client, "rival")
    # then
    assert client.get(job.get_absolute_url()).status_code == 404
    assert client.get(reverse("merchant:import-job-status", args=[job.pk])).status_code == 404
    assert list(client.get(IMPORT).context["jobs"]) == []


def test_the_import_pages_need_a_merchant_account(client):
    job_url = reverse("merchant:import-job", args=[1])
    assert client.get(IMPORT).status_code == 302
    assert client.get(job_url)["Location"].startswith(reverse("login"))
    get_user_model().objects.create_user("shopper", password="pw-shopper-123")
    client.login(username="shopper", password="pw-shopper-123")
    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, good_files()).status_code == 403


def hostile_forms() -> list:
    """(form files and fields, words the 400 must contain)."""
    good_csv = csv_bytes([row("A1", "a.jpg")])
    pics = photos("a.jpg")
    cases = [
        ("nothing", {}, "Choose a catalog CSV"),
        ("latin-1", {"csv_file": csv_bytes([row("É", "a.jpg")], encoding="latin-1")}, "not UTF-8"),
        ("no-columns", {"csv_file": b"sku;name\nA1;Shoe\n"}, "no price, category, image columns"),
        ("dot-dot", {"zip_file": zip_bytes({**pics, "../x.jpg": b"x"})}, "outside the ZIP"),
        ("absolute", {"zip_file": zip_bytes({"/etc/x.jpg": b"x"})}, "absolute path"),
        ("symlink", {"zip_file": zip_bytes(pics, symlinks={"b.jpg": "/etc"})}, "symbolic link"),
        ("nested", {"zip_file": zip_bytes({"in.zip": zip_bytes(pics)})}, "ZIP inside a ZIP"),
        ("bomb", {"zip_file": zip_bytes({"a.jpg": b"\0" * 3_000_000})}, "ZIP bombs"),
        ("not-zip", {"zip_file": b"just text"}, "not a ZIP"),
        ("zip-csv-latin-1", {"zip_file": zip_bytes({"c.csv": "é".encode("latin-1")})}, "UTF-8"),
        (
            "two-csvs",
            {"csv_file": good_csv, "zip_file": zip_bytes({"c.csv": good_csv})},
            "holds a CSV too",
        ),
        ("photos-no-category", {"photos": [pics["a.jpg"]]}, "choose their category and price"),
    ]
    return [pytest.param(files, words, id=case) for case, files, words in cases]


@pytest.mark.parametrize(("files", "words"), hostile_forms())
def test_hostile_uploads_get_a_400_that_says_why_and_nothing_is_lost(
    client, merchant, files, words, settings
):
    # given: a product already in the shop
    product_upsert(
        merchant=merchant,
        sku="KEEP",
        title="Kept",
        category=category_get_or_create("Sneakers"),
        price=Decimal("10"),
        stock=1,
        image=store_image(decode_upload(jpeg_bytes())),
    )
    before = list(Product.objects.values_list("pk", "sku", "price", "image_hash"))
    names = {"csv_file": "c.csv", "zip_file": "p.zip", "photos": "p.jpg"}
    data = {
        field: [upload(names[field], v) for v in value]
        if isinstance(value, list)
        else upload(names[field], value)
        for field, value in files.items()
    }
    # when
    response = client.post(IMPORT, data)
    # then
    assert response.status_code == 400
    assert words in html.unescape(response.content.decode())
    assert ImportJob.objects.count() == 0
    assert list(Product.objects.values_list("pk", "sku", "price", "image_hash")) == before
    assert not settings.LOOKALIKE_IMPORT_DIR.exists() or not any(
        settings.LOOKALIKE_IMPORT_DIR.iterdir()
    )


def test_photos_alone_with_a_category_and_price(
    client, merchant, django_capture_on_commit_callbacks
):
    files = [upload(name, data) for name, data in photos("trail-runner.jpg", "court.png").items()]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            IMPORT, {"photos": files, "category": "sneakers", "price": "45", "stock": "2"}
        )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FINISHED
    assert sorted(Product.objects.values_list("sku", "price")) == [
        ("court", Decimal("45.00")),
        ("trail-runner", Decimal("45.00")),
    ]


def test_an_oversized_file_gets_a_400(client, merchant, settings):
    settings.LOOKALIKE_IMPORT_MAX_UPLOAD_BYTES = 100
    response = client.post(IMPORT, good_files())
    assert response.status_code == 400 and "the limit is" in response.content.decode()
