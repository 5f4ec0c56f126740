"""Catalog CSV files: decoded, read and checked row by row (plain Python, no database)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Generic, TypeVar

from shop.imports.archives import ImportRejected

C = TypeVar("C")

REQUIRED = ("sku", "title", "price", "category", "image")
OPTIONAL = ("description", "currency", "stock")
# Other spellings of a column a spreadsheet might use.
ALIASES = {"image_file": "image", "image_filename": "image", "photo": "image", "name": "title"}
MAX_SKU, MAX_TITLE, MAX_DESCRIPTION = 64, 200, 10_000
MAX_PRICE = Decimal("99999999.99")
DEFAULT_CURRENCY = "EUR"
CURRENCY = re.compile(r"^[A-Z]{3}$")
SAVE_AS_UTF8 = (
    "Save it as UTF-8 (Excel: File > Save As > 'CSV UTF-8'; LibreOffice: Character set "
    "'Unicode (UTF-8)') and upload it again."
)


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row: row number as a spreadsheet shows it (header = row 1)."""

    row: int
    field: str
    message: str
    sku: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CatalogRow(Generic[C]):
    """A row that passed every check that needs no photo."""

    row: int
    sku: str
    title: str
    description: str
    price: Decimal
    currency: str
    category: C
    stock: int
    image: str


def decode_csv(data: bytes) -> str:
    """The CSV's text (UTF-8, with or without a BOM), or ImportRejected saying how to fix it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(f"The CSV file is UTF-16 text, not UTF-8. {SAVE_AS_UTF8}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRejected(
            f"The CSV file is not UTF-8: byte 0x{data[exc.start]:02x} on line {line} is not "
            f"valid UTF-8 (the file was probably saved as Windows-1252 or Latin-1). "
            f"{SAVE_AS_UTF8}"
        ) from None


def read_records(text: str, max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """(row number, {column: value}) for each non-blank data row; checks the header."""
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    try:
        header = _header(next(reader, []))
        records = []
        for number, values in enumerate(reader, start=2):
            if not any(value.strip() for value in values):
                continue
            if len(records) == max_rows:
                raise ImportRejected(
                    f"The CSV has more than {max_rows:,} rows, the limit for one import. "
                    "Split it into several files and import them one after another."
                )
            records.append((number, _record(header, values)))
    except csv.Error as exc:
        raise ImportRejected(
            f"The CSV cannot be read on line {reader.line_num} ({exc}). Check that line, "
            "then save the file as CSV again."
        ) from None
    return records


def _dialect(text: str) -> type[csv.Dialect]:
    # Spreadsheets in many European locales save with semicolons; the header line tells.
    first = text.split("\n", 1)[0]
    counts = {delimiter: first.count(delimiter) for delimiter in ",;\t"}
    delimiter = max(counts, key=counts.get)

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter if counts[delimiter] else ","
    return Dialect


def _header(names: list[str]) -> list[str]:
    header = [name.strip().lower().replace(" ", "_") for name in names]
    # Another spelling counts only when the usual name is not there too.
    header = [ALIASES[h] if h in ALIASES and ALIASES[h] not in header else h for h in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        found = ", ".join(h for h in header if h) or "nothing"
        raise ImportRejected(
            f"The CSV has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}. "
            f"Its first line must name the columns: {', '.join(REQUIRED)} (and optionally "
            f"{', '.join(OPTIONAL)}), in any order; found: {found}."
        )
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise ImportRejected(
            f"The CSV names the column {', '.join(repeated)} more than once. Keep one."
        )
    return header


def _record(header: list[str], values: list[str]) -> dict[str, str]:
    record = {name: value.strip() for name, value in zip(header, values, strict=False)}
    extra = [value for value in values[len(header) :] if value.strip()]
    if extra:
        # Reported by validate_rows: a comma inside an unquoted value shifts every column.
        record["__extra__"] = str(len(values))
    return record


def photo_records(names: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Records for a batch of photos: sku and title from each file name."""
    records = []
    for number, name in enumerate(names, start=1):
        stem = PurePosixPath(name.replace("\\", "/")).stem
        sku = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")[:MAX_SKU]
        title = re.sub(r"[_-]+", " ", stem).strip()
        records.append((number, {"sku": sku, "title": title[:MAX_TITLE], "image": name}))
    return records


def validate_rows(
    records: list[tuple[int, dict[str, str]]],
    *,
    categories: Mapping[str, C],
    has_image: Callable[[str], str | None],
    defaults: Mapping[str, str] | None = None,
) -> tuple[list[CatalogRow[C]], list[RowError]]:
    """Rows that pass every check, and what is wrong with the others (all of it, per field).

    ``categories`` maps lower-case names and slugs to categories; ``has_image`` returns why a
    named photo cannot be found, or None. ``defaults`` fill empty fields (photo batches).
    The first row with a sku wins; later rows with the same sku are reported, not imported.
    """
    rows: list[CatalogRow[C]] = []
    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for number, record in records:
        record = {**(defaults or {}), **{k: v for k, v in record.items() if v}}
        checker = _RowChecker(number, record, categories, has_image)
        row = checker.row()
        sku = record.get("sku", "")
        if sku and sku in first_row:
            checker.fail(
                "sku",
                f"sku {sku!r} is also on row {first_row[sku]}; only that first row is "
                "imported. Give each product its own sku.",
            )
        elif sku:
            first_row[sku] = number
        if checker.errors:
            errors.extend(checker.errors)
        else:
            rows.append(row)
    return rows, errors


class _RowChecker:
    def __init__(
        self,
        number: int,
        record: dict[str, str],
        categories: Mapping[str, C],
        has_image: Callable[[str], str | None],
    ) -> None:
        self.number = number
        self.record = record
        self.categories = categories
        self.has_image = has_image
        self.errors: list[RowError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(self.number, field, message, self.record.get("sku", "")))

    def row(self) -> CatalogRow | None:
        if "__extra__" in self.record:
            self.fail(
                "row",
                f"the row has {self.record['__extra__']} values, more than the header's "
                "columns. Put values that contain the separator in double quotes.",
            )
        values = {
            "sku": self._text("sku", MAX_SKU),
            "title": self._text("title", MAX_TITLE),
            "description": self._text("description", MAX_DESCRIPTION, required=False),
            "price": self._price(),
            "currency": self._currency(),
            "category": self._category(),
            "stock": self._stock(),
            "image": self._image(),
        }
        return None if self.errors else CatalogRow(row=self.number, **values)

    def _text(self, field: str, limit: int, required: bool = True) -> str:
        value = self.record.get(field, "")
        if required and not value:
            self.fail(field, f"{field} is missing; every row needs one.")
        elif len(value) > limit:
            self.fail(field, f"{field} is {len(value):,} characters long; the limit is {limit:,}.")
        return value

    def _price(self) -> Decimal | None:
        value = self.record.get("price", "")
        if not value:
            self.fail("price", "price is missing; write it like 49.90.")
            return None
        try:
            price = Decimal(value)
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price.as_tuple().exponent < -2:
            self.fail(
                "price",
                f"{value!r} is not a price; write it with a dot and at most two decimals, "
                "without a currency sign, like 49.90.",
            )
        elif price < 0:
            self.fail("price", f"price {value} is negative; it must be 0 or more.")
        elif price > MAX_PRICE:
            self.fail("price", f"price {value} is too large; the limit is {MAX_PRICE:,}.")
        else:
            return price
        return None

    def _currency(self) -> str:
        value = self.record.get("currency", DEFAULT_CURRENCY).upper()
        if not CURRENCY.match(value):
            self.fail(
                "currency",
                f"{self.record['currency']!r} is not a currency code; use three letters such "
                "as EUR, USD or GBP.",
            )
        return value

    def _category(self) -> C | None:
        value = self.record.get("category", "")
        category = self.categories.get(value.lower()) if value else None
        if category is None:
            known = ", ".join(sorted({str(c) for c in self.categories.values()})) or "none yet"
            problem = f"unknown category {value!r}" if value else "category is missing"
            self.fail(
                "category",
                f"{problem}; use one of: {known}. New categories are added by the shop's "
                "operators.",
            )
        return category

    def _stock(self) -> int:
        value = self.record.get("stock", "0")
        if not re.fullmatch(r"[+-]?\d{1,9}", value):
            self.fail("stock", f"{value!r} is not a whole number; write the count, like 12.")
            return 0
        if int(value) < 0:
            self.fail("stock", f"stock {value} is negative; it must be 0 or more.")
        return int(value)

    def _image(self) -> str:
        value = self.record.get("image", "")
        if not value:
            self.fail("image", "image is missing; give the file name of the product's photo.")
        elif re.match(r"^[a-z][a-z0-9+.-]*://", value, re.IGNORECASE):
            self.fail(
                "image",
                f"{value!r} is a web address; photos are not downloaded. Put the photo in the "
                "ZIP and give its file name.",
            )
        elif problem := self.has_image(value):
            self.fail("image", f"the photo {problem}.")
        return value
