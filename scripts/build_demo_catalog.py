"""Build the Lookalike demo catalog (web images + manifest.csv) from the CC0 shoe photos.

Reads ``<out>/labels.csv`` (the human-checked annotation: image, category, colour, style, kids)
and the source photos, then writes ``<out>/images/<sku>.jpg`` and ``<out>/manifest.csv``.
Everything is deterministic: SKUs are numbered per category in uuid order, and prices, stock
and model names come from RNGs seeded per item.

Usage (from the repository root)::

    python scripts/build_demo_catalog.py
    python scripts/build_demo_catalog.py --source ../shared/data/shoes-cc0 --out demo_catalog
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "shoes-cc0"
DEFAULT_OUT = REPO_ROOT / "demo_catalog"

SEED = 20240611
MAX_SIDE = 800
JPEG_QUALITY = 85
CURRENCY = "EUR"
OUT_OF_STOCK_RATE = 0.03
MAX_STOCK = 40
KIDS_PRICE_FACTOR = 0.55
BUDGET_PRICE_FACTOR = 0.6
BUDGET_STYLES = ("flip-flop", "pool slide", "clog")
PRICE_ENDINGS = (0.00, 0.95, 0.99)
EXCLUDED = "exclude"

MANIFEST_COLUMNS = [
    "sku",
    "title",
    "description",
    "category",
    "price",
    "currency",
    "stock",
    "image",
    "kids",
    "source_image",
]


@dataclass(frozen=True)
class Category:
    """Per-category listing settings."""

    code: str
    noun: str
    price_range: tuple[int, int]
    blurbs: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    "sneakers": Category(
        "SNK",
        "Sneaker",
        (49, 129),
        (
            "{item} with a cushioned sole for all-day comfort.",
            "{item} made for city walks and weekend errands.",
            "{item} that pairs with jeans, joggers and everything in between.",
        ),
    ),
    "boots": Category(
        "BOT",
        "Boot",
        (69, 189),
        (
            "{item} with a sturdy sole for cold and wet days.",
            "{item} that carries an outfit from autumn into winter.",
            "{item} built to keep your feet warm and dry.",
        ),
    ),
    "sandals": Category(
        "SND",
        "Sandal",
        (19, 79),
        (
            "{item} for warm days, beach trips and holidays.",
            "{item} that keeps your feet cool all summer.",
            "{item}, light and easy to slip on.",
        ),
    ),
    "heels": Category(
        "HEL",
        "Heel",
        (49, 149),
        (
            "{item} for evenings out and special occasions.",
            "{item} that adds instant polish to any outfit.",
            "{item} with a flattering, elegant silhouette.",
        ),
    ),
    "flats": Category(
        "FLT",
        "Flat",
        (29, 89),
        (
            "{item} that is comfortable from desk to dinner.",
            "{item} with a soft lining for everyday wear.",
            "{item}, an easy classic for any wardrobe.",
        ),
    ),
    "loafers": Category(
        "LOF",
        "Loafer",
        (59, 139),
        (
            "{item} with a smart slip-on fit.",
            "{item} that dresses up chinos or jeans.",
            "{item}, relaxed yet refined.",
        ),
    ),
    "slippers": Category(
        "SLP",
        "Slipper",
        (12, 39),
        (
            "{item} for cosy evenings at home.",
            "{item} with a soft, comfortable footbed.",
            "{item} that keeps toes warm indoors.",
        ),
    ),
    "formal": Category(
        "FRM",
        "Shoe",
        (79, 179),
        (
            "{item} for the office, weddings and formal occasions.",
            "{item} with a clean, polished finish.",
            "{item}, a timeless dress-shoe staple.",
        ),
    ),
}

# Last words of a style that already name the shoe, so no category noun is appended.
SHOE_NOUNS = frozenset(
    {
        "bootie",
        "brogue",
        "clog",
        "derby",
        "flip-flop",
        "jane",
        "loafer",
        "moccasin",
        "mule",
        "oxford",
        "pump",
        "runner",
        "sandal",
        "shoe",
        "slide",
        "slingback",
        "slip-on",
        "trainer",
    }
)
SMALL_WORDS = frozenset({"and", "of", "the"})
KIDS_BLURBS = (
    "{item} for little feet, easy to put on and made for play.",
    "{item} that keeps up with busy kids.",
    "{item} sized for children, comfy from nursery to playground.",
)

MODEL_NAMES = (
    "Alder",
    "Aspen",
    "Atlas",
    "Birch",
    "Bristol",
    "Brook",
    "Cedar",
    "Clover",
    "Cove",
    "Delta",
    "Dune",
    "Echo",
    "Ember",
    "Fern",
    "Fjord",
    "Flint",
    "Glen",
    "Harbor",
    "Hazel",
    "Heath",
    "Isla",
    "Juniper",
    "Kestrel",
    "Lark",
    "Linden",
    "Luna",
    "Maple",
    "Marlow",
    "Mesa",
    "Moss",
    "Nova",
    "Orion",
    "Piper",
    "Quinn",
    "Reef",
    "Ridge",
    "Rowan",
    "Sierra",
    "Skye",
    "Tide",
    "Vale",
    "Willow",
    "Wren",
)


@dataclass(frozen=True)
class Label:
    """One row of labels.csv."""

    image: str
    category: str
    colour: str
    style: str
    kids: bool


def parse_args() -> argparse.Namespace:
    """Parse the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder with images/*.jpg (default: ../shared/data/shoes-cc0 next to the repo)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="catalog folder holding labels.csv; images/ and manifest.csv are written here",
    )
    return parser.parse_args()


def read_labels(path: Path) -> list[Label]:
    """Read and validate labels.csv, sorted by image uuid."""
    labels: list[Label] = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            category = row["category"].strip()
            if category != EXCLUDED and category not in CATEGORIES:
                raise ValueError(f"{row['image']}: unknown category {category!r}")
            if row["kids"] not in ("True", "False"):
                raise ValueError(f"{row['image']}: kids must be True or False")
            labels.append(
                Label(
                    image=row["image"].strip(),
                    category=category,
                    colour=row["colour"].strip(),
                    style=row["style"].strip(),
                    kids=row["kids"] == "True",
                )
            )
    return sorted(labels, key=lambda label: label.image)


def assign_skus(labels: list[Label]) -> list[tuple[str, Label]]:
    """Number the non-excluded labels per category in uuid order, e.g. LK-SNK-0001."""
    counters: dict[str, int] = {}
    result: list[tuple[str, Label]] = []
    for label in labels:
        if label.category == EXCLUDED:
            continue
        code = CATEGORIES[label.category].code
        counters[code] = counters.get(code, 0) + 1
        result.append((f"LK-{code}-{counters[code]:04d}", label))
    return sorted(result, key=lambda pair: pair[0])


def title_case(text: str) -> str:
    """Title-case words and hyphenated parts, keeping small joining words lower-case."""
    words = []
    for word in text.split():
        parts = word.split("-")
        cased = [
            part if i > 0 and part in SMALL_WORDS else part[:1].upper() + part[1:]
            for i, part in enumerate(parts)
        ]
        words.append("-".join(cased))
    return " ".join(words)


def product_phrase(label: Label) -> str:
    """Colour + style + category noun, e.g. 'black leather chelsea boot'."""
    phrase = f"{label.colour} {label.style}"
    if label.style.split()[-1] not in SHOE_NOUNS:
        phrase += " " + CATEGORIES[label.category].noun.lower()
    return phrase


def base_title(label: Label) -> str:
    """Listing title without the model name, e.g. "Kids' Pink Velcro Sandal"."""
    title = title_case(product_phrase(label))
    return f"Kids' {title}" if label.kids else title


def model_names(items: list[tuple[str, Label]]) -> dict[str, str]:
    """Give every SKU a model name, distinct among SKUs that share a base title."""
    groups: dict[str, list[str]] = {}
    for sku, label in items:
        groups.setdefault(base_title(label), []).append(sku)
    names: dict[str, str] = {}
    for title, skus in groups.items():
        pool = list(MODEL_NAMES)
        random.Random(f"{SEED}:{title}").shuffle(pool)
        for i, sku in enumerate(skus):
            names[sku] = pool[i % len(pool)]
    return names


def with_article(phrase: str) -> str:
    """Prefix a phrase with 'A' or 'An'."""
    return f"{'An' if phrase[0].lower() in 'aeiou' else 'A'} {phrase}"


def describe(label: Label, rng: random.Random) -> str:
    """One short descriptive sentence for a listing."""
    item = product_phrase(label)
    blurbs = KIDS_BLURBS if label.kids else CATEGORIES[label.category].blurbs
    blurb = rng.choice(blurbs)
    return blurb.format(item=with_article(item))


def price_for(label: Label, rng: random.Random) -> str:
    """A plausible price for the category, ending in .00, .95 or .99."""
    low, high = CATEGORIES[label.category].price_range
    factor = KIDS_PRICE_FACTOR if label.kids else 1.0
    if any(word in label.style for word in BUDGET_STYLES):
        factor *= BUDGET_PRICE_FACTOR
    euros = max(9, round(rng.randint(low, high) * factor))
    ending = rng.choice(PRICE_ENDINGS)
    return f"{euros - 1 + ending:.2f}" if ending else f"{euros:.2f}"


def stock_for(rng: random.Random) -> int:
    """Stock level: mostly 1..40, about 3% out of stock."""
    if rng.random() < OUT_OF_STOCK_RATE:
        return 0
    return rng.randint(1, MAX_STOCK)


def export_image(source: Path, target: Path) -> None:
    """Write a web-sized, metadata-free progressive JPEG."""
    with Image.open(source) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.save(target, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)


def build(source: Path, out: Path) -> int:
    """Build images/ and manifest.csv under out; return the number of products."""
    labels = read_labels(out / "labels.csv")
    items = assign_skus(labels)
    names = model_names(items)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    wanted = {f"{sku}.jpg" for sku, _ in items}
    for stale in image_dir.glob("*.jpg"):
        if stale.name not in wanted:
            stale.unlink()

    rows: list[dict[str, str | int]] = []
    for sku, label in tqdm(items, desc="demo catalog", unit="img"):
        source_image = source / "images" / f"{label.image}.jpg"
        if not source_image.is_file():
            raise FileNotFoundError(source_image)
        image_name = f"{sku}.jpg"
        export_image(source_image, image_dir / image_name)
        rng = random.Random(f"{SEED}:{label.image}")
        rows.append(
            {
                "sku": sku,
                "title": f"{base_title(label)} '{names[sku]}'",
                "description": describe(label, rng),
                "category": label.category,
                "price": price_for(label, rng),
                "currency": CURRENCY,
                "stock": stock_for(rng),
                "image": image_name,
                "kids": str(label.kids),
                "source_image": f"{label.image}.jpg",
            }
        )

    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    """Entry point."""
    args = parse_args()
    count = build(args.source.resolve(), args.out.resolve())
    print(f"wrote {count} products to {args.out}")


if __name__ == "__main__":
    main()
