"""Catalog files made by the tests: CSVs and ZIPs, good and hostile."""

from __future__ import annotations

import csv
import io
import stat
import zipfile

from tests.imagefactory import jpeg_bytes

HEADER = ["sku", "title", "description", "price", "currency", "category", "stock", "image"]


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    """A CSV file's bytes."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def row(
    sku: str, image: str, *, category: str = "sneakers", price: str = "49.90", **fields
) -> list:
    """A CSV row in HEADER's order; keyword arguments override single fields."""
    values = {
        "sku": sku,
        "title": f"Shoe {sku}",
        "description": "",
        "price": price,
        "currency": "EUR",
        "category": category,
        "stock": "3",
        "image": image,
        **fields,
    }
    return [values[name] for name in HEADER]


def photos(*names: str) -> dict[str, bytes]:
    """Distinct small JPEGs (each its own colour) under these names."""
    return {
        name: jpeg_bytes(colour=(20 + 37 * i % 230, 90, 200 - 23 * i % 200))
        for i, name in enumerate(names)
    }


def zip_bytes(entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A ZIP of these entries (names kept exactly as given), plus symbolic link entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so the mode bits are read
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()
