"""Shared fixtures: every test gets its own media and index directories."""

from __future__ import annotations

import csv
import subprocess
import time
import uuid
from pathlib import Path

import pytest

# The broker fixtures (Redis on this machine, a Celery worker) for the tests that need them.
pytest_plugins = ["tests.celery_worker"]

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
    # A Celery worker in a thread marks this process as one that embeds in bulk, which
    # compiles the backbone by default: 5-60 s a compile. The tests of compiling set it.
    settings.LOOKALIKE_COMPILE = False
    reset_backbone_choice()
    services._readers.clear()
    # Cached answers and keys are keyed by ids, and ids repeat after a rollback.
    from recommender.cache import caches_clear

    caches_clear()
    # So is each process's catalog store.
    from recommender.catalog_store import store_clear

    store_clear()
    # Similar items ranked ahead are ranked in the call that finds them due, not in a thread.
    settings.LOOKALIKE_DEFAULT_ANSWERS = "inline"
    services._answer_keeper.clear()
    # Rate-limit counters are keyed by key id, and ids repeat after a rollback: start afresh.
    from django.core.cache import cache

    from recommender import usage

    cache.clear()
    # Usage is written at once in tests (a later flush would land in another test's database).
    settings.LOOKALIKE_API_USAGE_FLUSH_SECONDS = 0
    usage._pending.clear()
    yield
    services._readers.clear()
    services._answer_keeper.clear()
    store_clear()


def catalog_update(products, **fields) -> None:
    """Update products as the shop's writes do: stamped, and every catalog store told of it.

    A test's transaction never commits, so the on-commit callbacks are run here.
    """
    from django.test import TestCase
    from django.utils import timezone

    from recommender.catalog_store import catalog_changed

    with TestCase.captureOnCommitCallbacks(execute=True):
        products.update(updated_at=timezone.now(), **fields)
        catalog_changed()


def queued(callbacks: list) -> list:
    """Captured on-commit callbacks, less the catalog stores' version bumps (those queue no
    task)."""
    from recommender.catalog_store import catalog_version_bump

    return [callback for callback in callbacks if callback is not catalog_version_bump]


def synthetic_product(image_hash: str, **fields):
    """An unsaved product whose photo is stored by this hash as the shop stores photos (no file
    written; fields given replace the defaults), for catalogs of synthetic vectors."""
    from decimal import Decimal

    from shop.models import EmbeddingStatus, Product

    defaults = {
        "price": Decimal("10.00"),
        "currency": "EUR",
        "image": f"products/{image_hash[:2]}/{image_hash}.jpg",
        "thumbnail": f"products/{image_hash[:2]}/{image_hash}-thumb.jpg",
        "image_width": 800,
        "image_height": 600,
        "embedding_status": EmbeddingStatus.READY,
    }
    return Product(image_hash=image_hash, **{**defaults, **fields})


def synthetic_vector(image_hash: str, x):
    """An unsaved stored vector of the current model for a photo: x, normalised."""
    import numpy as np

    from recommender.embedding import current_extractor
    from recommender.models import ImageVector

    extractor = current_extractor()
    x = np.asarray(x, dtype=np.float32)
    return ImageVector(
        image_hash=image_hash,
        model_id=extractor.model_id,
        dim=extractor.dim,
        vector=(x / np.linalg.norm(x)).astype(np.float32).tobytes(),
    )


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


@pytest.fixture
def api_key(small_catalog):
    """A key to the small catalog's merchant; its full text is `api_key.full_key`."""
    from recommender.keys import api_key_create

    return api_key_create(merchant=small_catalog[0].merchant, name="tests")


@pytest.fixture
def api(api_key):
    """A test client that sends the key with every call."""
    from django.test import Client

    return Client(headers={"Authorization": f"Bearer {api_key.full_key}"})


REDIS_URL = "redis://127.0.0.1:6379/3"  # database 3 is this test suite's


def ensure_redis() -> None:
    """Start the local Redis when it is down (tests that need it never skip)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
        return
    except redis.ConnectionError:
        pass
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
         "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
         "--logfile", "/var/log/redis/ci.log"],
        check=True,
    )  # fmt: skip
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("Redis did not start on 127.0.0.1:6379")


@pytest.fixture
def redis_cache(settings):
    """Django's cache on Redis (database 3) under a prefix of this test's own."""
    import redis

    ensure_redis()
    prefix = f"lookalike-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def merchant(db):
    """A merchant with an empty catalog (for tests that need no products or index)."""
    from shop.models import Merchant

    return Merchant.objects.create(name="Empty shoes", slug="empty-shoes")


@pytest.fixture
def bare_key(merchant):
    """A key to the empty catalog."""
    from recommender.keys import api_key_create

    return api_key_create(merchant=merchant, name="bare")
