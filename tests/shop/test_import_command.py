"""The import_catalog command: the same import for operators, with a report per row."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from shop.models import ImportJob, Merchant, Product
from shop.services import category_get_or_create
from tests.shop.catalogfiles import csv_bytes, photos, row, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant() -> Merchant:
    category_get_or_create("Sneakers")
    return Merchant.objects.create(name="Shoe Shed", slug="shoe-shed")


def run(*args) -> str:
    out = StringIO()
    call_command("import_catalog", *map(str, args), stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_imports_a_csv_with_a_folder_of_photos_and_prints_each_failed_row(
    merchant, tmp_path: Path
):
    # given
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in photos("a.jpg", "b.jpg").items():
        (folder / name).write_bytes(data)
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(csv_bytes([row("A1", "a.jpg"), row("A2", "b.jpg"), row("A3", "c.jpg")]))
    # when
    output = run(catalog, "--merchant", "shoe-shed", "--images", folder)
    # then
    assert "row 4 [A3] image: the photo 'c.jpg' is not among the 2 uploaded photos." in output
    assert "3 rows, 2 created, 0 updated, 1 failed" in output
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A1", "A2"]
    assert ImportJob.objects.get().merchant == merchant
    assert catalog.exists() and folder.exists(), "an operator's own files are left alone"


def test_it_imports_a_zip_holding_the_csv_and_updates_on_a_second_run(merchant, tmp_path: Path):
    archive = tmp_path / "catalog.zip"
    archive.write_bytes(zip_bytes({"c.csv": csv_bytes([row("Z1", "z.jpg")]), **photos("z.jpg")}))
    run(archive, "--merchant", "shoe-shed")
    output = run(archive, "--merchant", "shoe-shed")
    assert "1 rows, 0 created, 1 updated, 0 failed" in output
    assert Product.objects.count() == 1


def test_it_refuses_a_hostile_zip_with_the_reason(merchant, tmp_path: Path):
    archive = tmp_path / "catalog.zip"
    archive.write_bytes(zip_bytes({"c.csv": b"x", "../../x.jpg": b"x"}))
    with pytest.raises(CommandError, match="outside the ZIP"):
        run(archive, "--merchant", "shoe-shed")


def test_it_names_the_known_merchants_when_the_slug_is_wrong(merchant, tmp_path: Path):
    with pytest.raises(CommandError, match="known merchants: shoe-shed"):
        run(tmp_path / "c.csv", "--merchant", "nobody")
