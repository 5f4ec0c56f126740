"""Catalog import jobs: good rows kept, bad rows reported, re-imports update by sku."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from shop.imports import selectors
from shop.imports.selectors import import_job_progress
from shop.imports.services import import_job_create, import_job_run, job_folder
from shop.models import Category, EmbeddingStatus, ImportJob, ImportStatus, Merchant, Product
from shop.services import category_get_or_create
from tests.imagefactory import TEXT
from tests.shop.catalogfiles import csv_bytes, photos, row, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant() -> Merchant:
    for name in ("Sneakers", "Boots"):
        category_get_or_create(name)
    return Merchant.objects.create(name="Shoe Shed", slug="shoe-shed")


@pytest.fixture
def run_import(django_capture_on_commit_callbacks):
    """Create an import job from file bytes and run it as the page would (eager Celery)."""

    def run(merchant: Merchant, *, csv: bytes | None = None, zip: bytes | None = None, **options):
        files = {}
        if csv is not None:
            files["csv_file"] = SimpleUploadedFile("catalog.csv", csv)
        if zip is not None:
            files["zip_file"] = SimpleUploadedFile("photos.zip", zip)
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(merchant, **files, **options)
        job.refresh_from_db()
        return job

    return run


def skus(merchant: Merchant) -> list[str]:
    return sorted(Product.objects.filter(merchant=merchant).values_list("sku", flat=True))


def test_a_mixed_csv_keeps_the_good_rows_and_reports_each_bad_one(merchant, run_import):
    # given
    images = {**photos("a.jpg", "b.jpg", "c.jpg"), "notes.jpg": TEXT}
    data = csv_bytes(
        [
            row("A1", "a.jpg", description="Light runner"),  # row 2: good
            row("", "a.jpg"),  # 3: missing sku
            row("A3", "b.jpg", price="cheap"),  # 4: bad price
            row("A4", "b.jpg", category="Trainers"),  # 5: unknown category
            row("A5", "gone.jpg"),  # 6: missing image
            row("A6", "notes.jpg"),  # 7: not an image
            row("A1", "c.jpg"),  # 8: duplicate sku
            row("A8", "c.jpg", category="Boots", price="120", stock="0"),  # 9: good
        ]
    )
    # when
    job = run_import(merchant, csv=data, zip=zip_bytes(images))
    # then
    assert job.status == ImportStatus.FINISHED and job.error == ""
    assert skus(merchant) == ["A1", "A8"]
    boot = Product.objects.get(sku="A8")
    assert (boot.category.slug, boot.price, boot.stock) == ("boots", Decimal("120"), 0)
    assert Product.objects.get(sku="A1").description == "Light runner"
    report = {(e["row"], e["field"]): e["message"] for e in job.errors}
    assert sorted(report) == [
        (3, "sku"),
        (4, "price"),
        (5, "category"),
        (6, "image"),
        (7, "image"),
        (8, "sku"),
    ]
    assert "Boots, Sneakers" in report[(5, "category")]
    assert "'gone.jpg' is not among the 4 uploaded photos" in report[(6, "image")]
    assert report[(7, "image")].startswith("'notes.jpg': This file is not an image")
    assert "also on row 2" in report[(8, "sku")]
    assert (job.rows_total, job.rows_valid, job.rows_parsed, job.rows_failed) == (8, 3, 8, 6)
    assert (job.products_created, job.products_updated) == (2, 0)
    # the good rows' photos were embedded, so the bar is full
    statuses = set(Product.objects.values_list("embedding_status", flat=True))
    assert statuses == {EmbeddingStatus.READY}
    progress = import_job_progress(job)
    assert progress["done"] and progress["percent"] == 100
    assert (progress["photos_embedded"], progress["photos_total"]) == (2, 2)
    assert not job_folder(job.pk).exists(), "the uploaded files are removed after the job"


def test_reimporting_updates_products_by_sku_instead_of_duplicating(merchant, run_import):
    # given
    images = zip_bytes(photos("a.jpg", "b.jpg"))
    first = run_import(
        merchant, csv=csv_bytes([row("A1", "a.jpg"), row("A2", "b.jpg")]), zip=images
    )
    ids = dict(Product.objects.values_list("sku", "pk"))
    # when: the same file again, with a new price for A2
    again = csv_bytes([row("A1", "a.jpg"), row("A2", "b.jpg", price="59.00")])
    second = run_import(merchant, csv=again, zip=images)
    # then
    assert (first.products_created, first.products_updated) == (2, 0)
    assert (second.products_created, second.products_updated) == (0, 2)
    assert dict(Product.objects.values_list("sku", "pk")) == ids
    assert Product.objects.get(sku="A2").price == Decimal("59.00")
    assert import_job_progress(second)["percent"] == 100


def test_a_zip_holding_the_csv_and_the_photos_is_imported(merchant, run_import):
    data = zip_bytes(
        {
            "shop/catalog.csv": csv_bytes([row("Z1", "images/z1.jpg"), row("Z2", "z2.jpg")]),
            **{f"shop/images/{n}": d for n, d in photos("z1.jpg", "z2.jpg").items()},
            "__MACOSX/shop/._z1.jpg": b"junk",
        }
    )
    job = run_import(merchant, zip=data)
    assert job.status == ImportStatus.FINISHED and job.errors == []
    assert skus(merchant) == ["Z1", "Z2"]


def test_photos_alone_become_products_named_after_their_files(merchant, run_import):
    files = [SimpleUploadedFile(n, d) for n, d in photos("red-runner.jpg", "blue_boot.png").items()]
    job = run_import(
        merchant,
        photos=files,
        category=Category.objects.get(slug="boots"),
        price=Decimal("35"),
        stock=4,
    )
    assert job.status == ImportStatus.FINISHED and job.errors == []
    products = Product.objects.order_by("sku")
    assert [(p.sku, p.title, p.category.slug, p.price, p.stock) for p in products] == [
        ("blue_boot", "blue boot", "boots", Decimal("35"), 4),
        ("red-runner", "red runner", "boots", Decimal("35"), 4),
    ]


def test_a_csv_that_is_not_utf8_fails_the_job_with_what_to_do(merchant, run_import):
    data = csv_bytes([row("A1", "a.jpg", title="Escarpin été")], encoding="latin-1")
    job = run_import(merchant, csv=data, zip=zip_bytes(photos("a.jpg")))
    assert job.status == ImportStatus.FAILED
    assert "not UTF-8" in job.error and "line 2" in job.error and "CSV UTF-8" in job.error
    assert Product.objects.count() == 0
    progress = import_job_progress(job)
    assert progress["done"] and progress["error"] == job.error


def test_a_hostile_zip_fails_the_job_and_writes_nothing_outside_its_folder(
    merchant, run_import, tmp_path: Path, settings
):
    # given: a ZIP that tries to write beside the import folder and into media
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    hostile = zip_bytes(
        {
            "catalog.csv": csv_bytes([row("A1", "a.jpg")]),
            "a.jpg": photos("a.jpg")["a.jpg"],
            "../../media/products/evil.jpg": b"x",
        }
    )
    # when
    job = run_import(merchant, zip=hostile)
    # then
    assert job.status == ImportStatus.FAILED and "outside the ZIP" in job.error
    after = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, f"files written: {after - before}"
    assert Product.objects.count() == 0


def test_5000_rows_are_checked_and_imported_with_one_embedding_task_per_batch(
    merchant, run_import, monkeypatch, settings
):
    # given: 5,000 rows sharing three photos (sizes and colours of a few models); every
    # 1,000th row has a bad price
    from recommender import tasks

    settings.LOOKALIKE_IMPORT_BATCH_SIZE = 500
    batches: list[list[int]] = []
    monkeypatch.setattr(tasks.embed_products, "delay", batches.append)
    names = ["a.jpg", "b.jpg", "c.jpg"]
    lines = [
        row(f"S{i:04}", names[i % 3], price="?" if i % 1000 == 999 else "25") for i in range(5000)
    ]
    # when
    job = run_import(merchant, csv=csv_bytes(lines), zip=zip_bytes(photos(*names)))
    # then
    assert job.status == ImportStatus.FINISHED
    assert [(e["row"], e["field"]) for e in job.errors] == [
        (i + 2, "price") for i in range(999, 5000, 1000)
    ]
    assert (job.rows_total, job.rows_failed, job.products_created) == (5000, 5, 4995)
    assert Product.objects.count() == 4995
    assert len(batches) == 10 and sorted(sum(batches, [])) == sorted(job.product_ids)
    assert Product.objects.values("image_hash").distinct().count() == 3
    # the photos wait for the (stubbed) embedder: the bar stops short of 100 %
    monkeypatch.setattr(selectors, "ID_CHUNK", 1000)
    progress = import_job_progress(job)
    assert (progress["photos_total"], progress["photos_embedded"]) == (4995, 0)
    assert not progress["done"] and progress["percent"] == 50


def test_a_finished_job_is_not_run_again(merchant, run_import):
    job = run_import(merchant, csv=csv_bytes([row("A1", "a.jpg")]), zip=zip_bytes(photos("a.jpg")))
    Product.objects.all().delete()
    again = import_job_run(job.pk)
    assert again.status == ImportStatus.FINISHED and Product.objects.count() == 0
    assert ImportJob.objects.count() == 1


def test_a_zip_of_photos_alone_uses_the_chosen_category_and_price(merchant, run_import):
    job = run_import(
        merchant,
        zip=zip_bytes(photos("summer/sandal-1.jpg", "summer/sandal-2.jpg")),
        category=Category.objects.get(slug="sneakers"),
        price=Decimal("19.99"),
    )
    assert job.status == ImportStatus.FINISHED and job.errors == []
    assert skus(merchant) == ["sandal-1", "sandal-2"]
    assert set(Product.objects.values_list("stock", "price")) == {(1, Decimal("19.99"))}


def test_reimporting_a_hidden_product_shows_it_and_puts_it_back_in_the_index(
    merchant, run_import, settings, django_capture_on_commit_callbacks
):
    # given: an imported product, then hidden by the merchant (so it leaves the index)
    from recommender import index as vector_index
    from recommender.indexing import indexed_ids
    from shop.services import product_update

    def in_index() -> set[int]:
        index, _ = vector_index.load_index(settings.LOOKALIKE_INDEX_DIR)
        return set(indexed_ids(index).tolist())

    files = {"csv": csv_bytes([row("A1", "a.jpg"), row("A2", "b.jpg")])}
    files["zip"] = zip_bytes(photos("a.jpg", "b.jpg"))
    run_import(merchant, **files)
    hidden = Product.objects.get(sku="A1")
    with django_capture_on_commit_callbacks(execute=True):
        product_update(hidden, is_active=False)
    assert hidden.pk not in in_index()
    # when: the same file again
    run_import(merchant, **files)
    # then
    hidden.refresh_from_db()
    assert hidden.is_active and hidden.pk in in_index()
