"""A catalog to import for measuring: N rows as catalog.csv + photos.zip, each photo distinct.

Usage: python scripts/make_import_catalog.py --rows 1000 --out /tmp/catalog-1000
The demo photos repeat after 429; each row's photo gets a small mark of its own (a few
pixels in a corner), so every photo has its own content hash and is really embedded.
"""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

DEMO = Path(__file__).resolve().parent.parent / "demo_catalog"
HEADER = ["sku", "title", "description", "price", "currency", "category", "stock", "image"]


def distinct_photo(source: Path, number: int) -> bytes:
    """The demo photo with a 6x6 mark whose colour encodes the row number."""
    image = Image.open(source).convert("RGB")
    colour = (number % 256, (number // 256) % 256, 255 - number % 251)
    ImageDraw.Draw(image).rectangle((0, 0, 5, 5), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    """Write catalog.csv and photos.zip."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with open(DEMO / "manifest.csv", newline="", encoding="utf-8") as handle:
        demo = list(csv.DictReader(handle))
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        open(args.out / "catalog.csv", "w", newline="", encoding="utf-8") as handle,
        zipfile.ZipFile(args.out / "photos.zip", "w", zipfile.ZIP_STORED) as archive,
    ):
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number in range(args.rows):
            row = demo[number % len(demo)]
            name = f"BENCH-{number:05}.jpg"
            archive.writestr(name, distinct_photo(DEMO / "images" / row["image"], number))
            writer.writerow(
                [f"BENCH-{number:05}", f"{row['title']} #{number}", row.get("description", ""),
                 row["price"], "EUR", row["category"], row["stock"], name]
            )  # fmt: skip
    print(f"Wrote {args.rows} rows to {args.out}/catalog.csv and {args.out}/photos.zip")


if __name__ == "__main__":
    main()
