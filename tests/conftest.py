"""Shared fixtures: every test gets its own media and index directories."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "demo_catalog"


@pytest.fixture(autouse=True)
def _isolated_files(request, tmp_path: Path):
    """Point media, the index and imports at a temp dir and use the offline backbone."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    settings = request.getfixturevalue("settings")
    from recommender import services
    from recommender.embedding import reset_backbone_choice

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LOOKALIKE_INDEX_DIR = tmp_path / "index"
    settings.LOOKALIKE_IMPORT_DIR = tmp_path / "imports"
    settings.LOOKALIKE_BACKBONE = "efficientnet_lite0"
    settings.LOOKALIKE_WEIGHTS_DOWNLOAD = False
    reset_backbone_choice()
    services._readers.clear()
    yield
    services._readers.clear()


def demo_manifest_rows() -> list[dict]:
    """The shipped demo catalog's manifest rows."""
    with open(DEMO_DIR / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def pick_rows(per_category: int, categories: tuple[str, ...] | None = None) -> list[dict]:
    """A few in-stock demo rows from each category, in manifest order."""
    picked: dict[str, list[dict]] = {}
    for row in demo_manifest_rows():
        if categories and row["category"] not in categories:
            continue
        rows = picked.setdefault(row["category"], [])
        if len(rows) < per_category and int(row["stock"]) > 0:
            rows.append(row)
    return [row for rows in picked.values() for row in rows]


def write_catalog(directory: Path, rows: list[dict]) -> Path:
    """A catalog directory (manifest + the demo images) holding only these rows."""
    directory.mkdir(parents=True, exist_ok=True)
    images = directory / "images"
    if not images.exists():
        images.symlink_to(DEMO_DIR / "images")
    with open(directory / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return directory


@pytest.fixture
def small_catalog(db, tmp_path: Path):
    """Twelve demo products (three per category in four categories), embedded and indexed."""
    from recommender.services import index_rebuild, products_embed
    from shop.models import Product
    from shop.services import demo_catalog_load

    rows = pick_rows(3, ("sneakers", "boots", "sandals", "heels"))
    ids = demo_catalog_load(write_catalog(tmp_path / "catalog", rows))
    products_embed(ids)
    index_rebuild()
    return list(Product.objects.filter(pk__in=ids).select_related("category"))
