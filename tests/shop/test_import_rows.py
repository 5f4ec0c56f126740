"""Reading and checking catalog CSV rows (plain Python: no database, no photos decoded)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shop.imports.archives import ImportRejected
from shop.imports.rows import decode_csv, photo_records, read_records, validate_rows
from tests.shop.catalogfiles import HEADER, csv_bytes, row

CATEGORIES = {"sneakers": "Sneakers", "boots": "Boots"}
PHOTOS = {"a.jpg", "b.jpg"}


def has_image(name: str) -> str | None:
    return None if name in PHOTOS else f"{name!r} is not among the 2 uploaded photos"


def validate(data: bytes, max_rows: int = 50_000):
    records = read_records(decode_csv(data), max_rows)
    return validate_rows(records, categories=CATEGORIES, has_image=has_image)


def by_row(errors) -> dict[int, list[tuple[str, str]]]:
    report: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        report.setdefault(error.row, []).append((error.field, error.message))
    return report


def test_it_reports_each_bad_row_by_number_and_field_and_keeps_the_good_ones():
    # given
    data = csv_bytes(
        [
            row("A1", "a.jpg"),  # row 2
            row("", "a.jpg"),  # 3: missing sku
            row("A3", "a.jpg", price="12,50"),  # 4: bad price
            row("A4", "a.jpg", category="Trainers"),  # 5: unknown category
            row("A5", "missing.jpg"),  # 6: missing image
            row("A1", "b.jpg"),  # 7: duplicate sku
            row("A7", "b.jpg", stock="-2"),  # 8: negative stock
            row("A8", "b.jpg", currency="EURO"),  # 9: bad currency
            row("A9", "b.jpg", category="boots", price="-1"),  # 10: negative price
            row("A10", "", title=""),  # 11: two fields wrong
            row("A11", "b.jpg", category="BOOTS"),  # 12: good (category by any case)
        ]
    )
    # when
    rows, errors = validate(data)
    # then
    assert [(r.row, r.sku) for r in rows] == [(2, "A1"), (12, "A11")]
    assert rows[1].category == "Boots" and rows[0].price == Decimal("49.90")
    report = by_row(errors)
    assert sorted(report) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert [f for f, _ in report[3]] == ["sku"] and "sku is missing" in report[3][0][1]
    assert report[4] == [("price", report[4][0][1])] and "'12,50' is not a price" in report[4][0][1]
    assert "like 49.90" in report[4][0][1]
    assert report[5][0][0] == "category"
    assert "unknown category 'Trainers'; use one of: Boots, Sneakers" in report[5][0][1]
    assert report[6] == [("image", "the photo 'missing.jpg' is not among the 2 uploaded photos.")]
    assert report[7][0][0] == "sku" and "also on row 2" in report[7][0][1]
    assert report[8][0][0] == "stock" and "negative" in report[8][0][1]
    assert report[9][0][0] == "currency" and "three letters" in report[9][0][1]
    assert report[10][0][0] == "price" and "negative" in report[10][0][1]
    assert sorted(f for f, _ in report[11]) == ["image", "title"]
    assert {e.sku for e in errors if e.row == 8} == {"A7"}


def test_it_accepts_a_bom_header_names_in_any_case_and_semicolons():
    # given: what Excel saves as "CSV UTF-8" in a European locale
    header = ";".join(name.upper() for name in HEADER)
    line = "É1;Espadrille été;;19.5;eur;Sneakers;;a.jpg"
    data = ("\ufeff" + header + "\r\n" + line + "\r\n\r\n").encode("utf-8")
    # when
    rows, errors = validate(data)
    # then
    assert errors == []
    assert [(r.sku, r.title, r.currency, r.stock) for r in rows] == [
        ("É1", "Espadrille été", "EUR", 0)
    ]


def test_it_refuses_a_file_that_is_not_utf8_saying_where_and_what_to_do():
    data = csv_bytes([row("A1", "a.jpg"), row("A2", "a.jpg", title="Été")], encoding="cp1252")
    with pytest.raises(ImportRejected) as refused:
        decode_csv(data)
    message = str(refused.value)
    assert "not UTF-8" in message and "byte 0xc9 on line 3" in message
    assert "CSV UTF-8" in message


def test_it_refuses_utf16():
    with pytest.raises(ImportRejected, match="UTF-16"):
        decode_csv(csv_bytes([row("A1", "a.jpg")], encoding="utf-16"))


def test_it_names_the_missing_columns():
    data = csv_bytes([["A1", "Shoe", "a.jpg"]], header=["sku", "title", "image"])
    with pytest.raises(ImportRejected) as refused:
        validate(data)
    assert "no price, category columns" in str(refused.value)
    assert "found: sku, title, image" in str(refused.value)


def test_it_reports_a_row_with_more_values_than_columns():
    data = csv_bytes([row("A1", "a.jpg") + ["surplus"]])
    rows, errors = validate(data)
    assert rows == [] and errors[0].field == "row" and "double quotes" in errors[0].message


def test_it_refuses_more_rows_than_the_limit():
    data = csv_bytes([row(f"S{i}", "a.jpg") for i in range(11)])
    with pytest.raises(ImportRejected, match="more than 10 rows"):
        validate(data, max_rows=10)


def test_it_checks_5000_rows_and_reports_exactly_the_bad_ones():
    # given: 5,000 rows sharing two photos; every 500th has a bad price, every 1,250th
    # repeats an earlier sku
    lines = []
    for i in range(5000):
        sku = f"S{i - 1}" if i % 1250 == 1249 else f"S{i}"
        lines.append(row(sku, "a.jpg" if i % 2 else "b.jpg", price="n/a" if i % 500 == 7 else "10"))
    # when
    rows, errors = validate(csv_bytes(lines))
    # then
    bad_price = {i + 2 for i in range(5000) if i % 500 == 7}
    duplicate = {i + 2 for i in range(5000) if i % 1250 == 1249}
    assert {e.row for e in errors if e.field == "price"} == bad_price
    assert {e.row for e in errors if e.field == "sku"} == duplicate
    assert len(rows) == 5000 - len(bad_price) - len(duplicate)
    assert len({r.sku for r in rows}) == len(rows)


def test_a_photo_batch_takes_sku_and_title_from_file_names():
    records = photo_records(["summer/red_runner.jpg", "Blue Boot 2.png"])
    defaults = {"category": "boots", "price": "20", "stock": "1"}
    rows, errors = validate_rows(
        records, categories=CATEGORIES, has_image=lambda name: None, defaults=defaults
    )
    assert errors == []
    assert [(r.sku, r.title, r.image) for r in rows] == [
        ("red_runner", "red runner", "summer/red_runner.jpg"),
        ("Blue-Boot-2", "Blue Boot 2", "Blue Boot 2.png"),
    ]


def test_other_column_spellings_are_read_when_the_usual_one_is_absent():
    header = ["SKU", "Name", "Price", "Category", "Image File"]
    rows, errors = validate(csv_bytes([["A1", "Shoe", "5", "boots", "a.jpg"]], header=header))
    assert errors == [] and (rows[0].title, rows[0].image) == ("Shoe", "a.jpg")
