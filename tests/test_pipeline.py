"""The pipeline with real parts: a Celery worker consuming from the Redis on this machine.

Most tests run the worker in a thread (celery.contrib.testing); the crash test runs one as a
separate process and kills its pool process with SIGKILL in the middle of a batch, and another
runs one as it runs by default, its backbone compiled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from config.celery import app
from embeddings.images import decode_photo
from recommender import index as vector_index
from recommender.embedding import compile_backbone, current_pipeline
from recommender.indexing import indexed_ids
from recommender.models import ImageVector
from recommender.services import products_embed, similar_to_product
from recommender.tasks import embed_products, sync_index
from shop.images import decode_upload, read_stored, store_image
from shop.models import EmbeddingStatus, Merchant, Product
from shop.services import (
    DEMO_MERCHANT,
    category_get_or_create,
    merchant_get_or_create,
    product_upsert,
)
from tests.celery_worker import BROKER, KEY_PREFIX
from tests.conftest import DEMO_DIR, REPO, demo_manifest_rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(check: Callable[[], object], timeout: float = 60, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")


def demo_products(count: int, *, per_category: int | None = None) -> list[Product]:
    """Demo products saved without queuing anything (the test decides what to queue)."""
    merchant = merchant_get_or_create(*DEMO_MERCHANT)
    rows = [r for r in demo_manifest_rows() if int(r["stock"]) > 0][:count]
    products = []
    for row in rows:
        image = store_image(decode_upload((DEMO_DIR / "images" / row["image"]).read_bytes()))
        products.append(
            product_upsert(
                merchant=merchant,
                sku=row["sku"],
                title=row["title"],
                category=category_get_or_create(row["category"]),
                price=row["price"],
                stock=int(row["stock"]),
                image=image,
                enqueue=False,
            )
        )
    return products


@pytest.fixture
def indexed_catalog(db, worker) -> list[Product]:
    """Twelve demo products, embedded and indexed through the worker."""
    products = demo_products(12)
    ids = [p.pk for p in products]
    embed_products.delay(ids)
    wait_for(lambda: _index_count() == 12, 120, "the first index version")
    return products


def _index_count() -> int:
    from django.conf import settings

    try:
        return vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR).count
    except (AttributeError, vector_index.IndexCorrupt):
        return 0


def similar_ids(product: Product) -> list[int]:
    return [item.product.pk for item in similar_to_product(product.pk, k=20).items]


@pytest.fixture
def merchant_client(client, indexed_catalog):
    merchant = Merchant.objects.get()
    merchant.user = get_user_model().objects.create_user("shoes", password="pw-shoes-123")
    merchant.save()
    client.login(username="shoes", password="pw-shoes-123")
    return client


def photo_of(product: Product) -> SimpleUploadedFile:
    from django.conf import settings

    return SimpleUploadedFile("photo.jpg", (Path(settings.MEDIA_ROOT) / product.image).read_bytes())


def test_a_product_added_on_the_merchant_page_appears_in_similar_results(
    merchant_client, indexed_catalog
):
    # given a shopper looking at a product's similar items
    query = indexed_catalog[0]
    # when the merchant adds a product with a copy of its photo
    started = time.monotonic()
    response = merchant_client.post(
        reverse("merchant:product-add"),
        {
            "sku": "NEW-1",
            "title": "New arrival",
            "category": query.category_id,
            "price": "49.00",
            "currency": "EUR",
            "stock": "3",
            "is_active": "on",
            "photo": photo_of(query),
        },
    )
    assert response.status_code == 302
    new = Product.objects.get(sku="NEW-1")
    # then the worker embeds it and it becomes the query's closest match
    wait_for(lambda: similar_ids(query)[:1] == [new.pk], 60, "the new product in the results")
    new.refresh_from_db()
    assert new.embedding_status == EmbeddingStatus.READY
    print(f"freshness: {time.monotonic() - started:.2f} s")


def test_a_new_photo_out_of_stock_and_delete_reach_the_results(merchant_client, indexed_catalog):
    # given B, and A, the product least like B
    b = indexed_catalog[-1]
    a = Product.objects.get(pk=similar_ids(b)[-1])
    # when A's photo is replaced by a copy of B's, A becomes B's closest match
    data = {
        "title": a.title,
        "category": a.category_id,
        "price": str(a.price),
        "currency": "EUR",
        "stock": a.stock,
        "is_active": "on",
        "photo": photo_of(b),
    }
    response = merchant_client.post(reverse("merchant:product-edit", args=[a.pk]), data)
    assert response.status_code == 302
    wait_for(lambda: similar_ids(b)[:1] == [a.pk], 60, "the new photo in the index")
    # when A sells out it leaves the results at once; restocked, it comes back
    merchant_client.post(reverse("merchant:product-stock", args=[a.pk]), {"stock": "0"})
    assert a.pk not in similar_ids(b)
    merchant_client.post(reverse("merchant:product-stock", args=[a.pk]), {"stock": "2"})
    assert similar_ids(b)[0] == a.pk
    # when A is deleted it leaves the results at once, and the worker drops its entry
    merchant_client.post(reverse("merchant:product-delete", args=[a.pk]))
    assert a.pk not in similar_ids(b)
    wait_for(lambda: _index_count() == len(indexed_catalog) - 1, 60, "the index without A")


def test_a_task_delivered_twice_writes_nothing_twice(indexed_catalog):
    # given three more products
    extra = demo_products(15)[12:]
    ids = [p.pk for p in extra]
    # when the same task is delivered twice
    embed_products.delay(ids)
    embed_products.delay(ids)
    wait_for(lambda: _index_count() == 15, 60, "15 products in the index")
    wait_for(lambda: not _queued(), 60, "the queue to drain")
    # then each photo has one vector and each product one index entry
    hashes = [p.image_hash for p in extra]
    assert ImageVector.objects.filter(image_hash__in=hashes).count() == 3
    index, _ = vector_index.load_index(_index_dir())
    held = indexed_ids(index).tolist()
    assert len(held) == len(set(held)) == 15


def _index_dir() -> Path:
    from django.conf import settings

    return settings.LOOKALIKE_INDEX_DIR


def _queued() -> int:
    import redis

    client = redis.Redis.from_url(BROKER)
    return sum(client.llen(KEY_PREFIX + queue) for queue in ("default", "embedding"))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@contextlib.contextmanager
def celery_worker_process(broker, settings, log_path: Path, **env) -> Iterator[subprocess.Popen]:
    """A separate `celery worker` process (prefork, one pool process) on this test's files;
    `env` adds to or overrides its environment."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_KEY_PREFIX": KEY_PREFIX,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOOKALIKE_INDEX_DIR": str(settings.LOOKALIKE_INDEX_DIR),
        "LOOKALIKE_BACKBONE": "efficientnet_lite0",
        "LOOKALIKE_WEIGHTS_DOWNLOAD": "0",
        "LOOKALIKE_EMBED_BATCH_SIZE": "2",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [celery, "-A", "config", "worker", "-Q", "default,embedding", "-c", "1", "-l", "info"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def worker_process(broker, settings, tmp_path) -> Iterator[subprocess.Popen]:
    """A worker process that runs its backbone eager (compiling would only slow this test)."""
    with celery_worker_process(
        broker, settings, tmp_path / "worker.log", LOOKALIKE_COMPILE="0"
    ) as process:
        yield process


def test_a_worker_killed_mid_batch_has_its_batch_redelivered(worker_process, tmp_path):
    # given 30 products queued as one batch for a worker process
    products = demo_products(30)
    ids = [p.pk for p in products]
    embed_products.delay(ids)
    # when its pool process is killed once part of the batch is done
    done = lambda: Product.objects.filter(  # noqa: E731
        pk__in=ids, embedding_status=EmbeddingStatus.READY
    ).count()
    wait_for(lambda: done() >= 2, 180, "the batch to start")
    assert done() < 30, "the batch finished before the worker could be killed"
    pool = wait_for(lambda: children_of(worker_process.pid), 10, "the pool process")
    for pid in pool:
        os.kill(pid, signal.SIGKILL)
    # then the batch is delivered again and finishes
    wait_for(lambda: done() == 30, 240, "the redelivered batch")
    wait_for(lambda: _index_count() == 30, 120, "the index")
    log = (tmp_path / "worker.log").read_text()
    assert "WorkerLostError" in log or "signal 9" in log
    # and every product has exactly one current vector and one index entry
    hashes = {p.image_hash for p in products}
    assert ImageVector.objects.filter(image_hash__in=hashes).count() == len(hashes)
    index, _ = vector_index.load_index(_index_dir())
    held = indexed_ids(index).tolist()
    assert sorted(held) == sorted(ids)


def test_a_worker_compiles_its_backbone_by_default_and_stores_the_eager_vectors(
    broker, settings, tmp_path
):
    # given a worker process with LOOKALIKE_COMPILE at its default ("auto") on a CPU,
    # and 5 products, embedded 2, 2 and 1 at a time: the compiled model meets several batch sizes
    products = demo_products(5)
    ids = [p.pk for p in products]
    log_path = tmp_path / "worker.log"
    with celery_worker_process(
        broker, settings, log_path, LOOKALIKE_COMPILE="auto", LOG_LEVEL="INFO"
    ) as process:
        # when they are queued for embedding
        embed_products.delay(ids)
        ready = lambda: Product.objects.filter(  # noqa: E731
            pk__in=ids, embedding_status=EmbeddingStatus.READY
        ).count()
        wait_for(lambda: ready() == 5 or process.poll() is not None, 400, "the compiled batch")
    log = log_path.read_text()
    assert ready() == 5, log[-3000:]
    # then the worker ran its backbone compiled
    assert "compiled)" in log, log[-3000:]
    # and the stored vectors are those the eager model makes of the same photos
    pipeline = current_pipeline()
    assert not compile_backbone()  # this test process runs eager
    photos = [decode_photo(read_stored(p.image)) for p in products]
    eager = pipeline.embed(photos)
    stored = {
        v.image_hash: v.as_array() for v in ImageVector.objects.filter(model_id=pipeline.model_id)
    }
    worker = np.stack([stored[p.image_hash] for p in products])
    assert np.sum(eager * worker, axis=1).min() >= 0.999


def test_reconcile_runs_as_a_task_on_the_worker(indexed_catalog):
    from recommender.tasks import reconcile_index

    Product.objects.filter(pk=indexed_catalog[0].pk).delete()
    result = reconcile_index.delay()
    wait_for(lambda: _index_count() == 11, 60, "the reconciled index")
    assert result.id


def test_without_a_broker_tasks_run_in_process(db, settings):
    # the demo's mode: no CELERY_BROKER_URL, so the task ran before .delay() returned
    assert app.conf.task_always_eager
    products = demo_products(2)
    sync_index.delay([])
    assert _index_count() == 0  # neither photo embedded yet: empty index
    products_embed([p.pk for p in products])
    sync_index.delay([p.pk for p in products])
    assert _index_count() == 2
