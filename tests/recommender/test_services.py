"""Embedding, indexing and similar-item search against a real small catalog."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.core.files.storage import default_storage

from recommender import index as vector_index
from recommender.models import ImageVector
from recommender.services import (
    Catalog,
    SimilarFilters,
    index_rebuild,
    products_embed,
    similar_to_image,
    similar_to_product,
)
from shop.images import open_stored
from shop.models import EmbeddingStatus, Product
from shop.services import category_get_or_create, product_upsert
from tests.conftest import DEMO_DIR, catalog_update, queued

pytestmark = pytest.mark.django_db


def test_similar_items_exclude_the_query_product_and_rank_by_score(small_catalog) -> None:
    query = small_catalog[0]
    result = similar_to_product(query.pk, k=5)
    ids = [item.product.pk for item in result.items]
    assert len(ids) == 5 and query.pk not in ids
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)
    assert result.model_id.startswith("efficientnet_lite0@")


def test_the_same_kind_of_shoe_scores_higher_than_other_kinds(small_catalog) -> None:
    # given 12 products, three in each of four categories
    margins = []
    for product in small_catalog:
        # when all the others are ranked
        items = similar_to_product(product.pk, k=11).items
        same = [i.score for i in items if i.product.category_id == product.category_id]
        other = [i.score for i in items if i.product.category_id != product.category_id]
        margins.append(sum(same) / len(same) - sum(other) / len(other))
    # then, on average, the same kind of shoe looks more alike than the other kinds
    assert sum(margins) / len(margins) > 0.03
    assert sum(m > 0 for m in margins) >= 8


def test_out_of_stock_and_inactive_products_disappear_before_the_index_changes(
    small_catalog,
) -> None:
    # given the nearest neighbours of a product
    query = small_catalog[0]
    first, second = [item.product for item in similar_to_product(query.pk, k=2).items]
    # when one sells out and another is deactivated, without rebuilding the index
    catalog_update(Product.objects.filter(pk=first.pk), stock=0)
    catalog_update(Product.objects.filter(pk=second.pk), is_active=False)
    ids = [item.product.pk for item in similar_to_product(query.pk, k=11).items]
    # then neither is offered, and the list is still as long as it can be
    assert first.pk not in ids and second.pk not in ids
    assert len(ids) == 9
    # and a restocked product comes back
    catalog_update(Product.objects.filter(pk=first.pk), stock=3)
    assert first.pk in [item.product.pk for item in similar_to_product(query.pk, k=11).items]


def test_a_category_filter_is_honoured(small_catalog) -> None:
    query = next(p for p in small_catalog if p.category.slug == "boots")
    result = similar_to_product(query.pk, k=10, filters=SimilarFilters(category="sandals"))
    assert [item.product.category.slug for item in result.items] == ["sandals"] * 3


def test_searching_by_a_catalog_photo_finds_that_product_first(small_catalog) -> None:
    target = small_catalog[5]
    result = similar_to_image(open_stored(target.image), k=3)
    assert result.items[0].product.pk == target.pk
    # Not 1: the catalog vector comes from tilted views (LOOKALIKE_CATALOG_ROTATION), the upload
    # is upright.
    assert result.items[0].score > 0.95


def test_embedding_twice_writes_nothing_twice(small_catalog) -> None:
    ids = [p.pk for p in small_catalog]
    before = ImageVector.objects.count()
    report = products_embed(ids)
    assert report.embedded == 0 and report.reused == len(ids)
    assert ImageVector.objects.count() == before == len(ids)


def test_an_unreadable_stored_photo_fails_with_its_reason(small_catalog) -> None:
    # given a product whose stored photo has been damaged on disk
    product = small_catalog[0]
    ImageVector.objects.filter(image_hash=product.image_hash).delete()
    with default_storage.open(product.image, "wb") as handle:
        handle.write(b"garbage")
    # when
    report = products_embed([product.pk])
    # then
    product.refresh_from_db()
    assert product.embedding_status == EmbeddingStatus.FAILED
    assert "could not be read" in product.embedding_error
    assert list(report.failed) == [product.pk]


def test_the_index_records_the_model_and_holds_active_products(small_catalog) -> None:
    Product.objects.filter(pk=small_catalog[0].pk).update(is_active=False)
    manifest = index_rebuild()
    index, loaded = vector_index.load_index(manifest_dir())
    assert loaded.model_id == manifest.model_id
    assert loaded.model_id.startswith("efficientnet_lite0@")
    assert index.ntotal == len(small_catalog) - 1


def manifest_dir():
    from django.conf import settings

    return settings.LOOKALIKE_INDEX_DIR


def test_a_new_product_is_embedded_and_indexed_through_the_task_after_commit(
    small_catalog, django_capture_on_commit_callbacks
) -> None:
    # given a new product whose photo is a demo photo (Celery runs in-process: no broker set)
    from shop.images import decode_upload, store_image

    source = small_catalog[0]
    photo = (DEMO_DIR / "images" / f"{source.sku}.jpg").read_bytes()
    stored = store_image(decode_upload(photo))
    # when it is saved and the transaction commits
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        product = product_upsert(
            merchant=source.merchant,
            sku="NEW-1",
            title="A new boot",
            category=category_get_or_create("boots"),
            price=Decimal("10.00"),
            stock=5,
            image=stored,
        )
    # then the task embedded it and the index serves it
    assert len(queued(callbacks)) == 1
    product.refresh_from_db()
    assert product.embedding_status == EmbeddingStatus.READY
    found = [item.product.pk for item in similar_to_product(source.pk, k=3).items]
    assert found[0] == product.pk


def test_a_serving_process_picks_up_a_new_index_version_without_restarting(
    small_catalog, settings
) -> None:
    # given a web process serving the first index version
    settings.LOOKALIKE_INDEX_CHECK_INTERVAL = 0
    query = small_catalog[0]
    assert similar_to_product(query.pk, k=3).index_version == 1
    # when another process writes a new version holding a twin of the product
    # (written with the index module directly, so this process's reader is not told)
    from recommender.embedding import current_extractor
    from recommender.services import _active_vectors

    twin = Product.objects.get(pk=query.pk)
    twin.pk, twin.sku = None, "TWIN-1"
    twin.save()
    extractor = current_extractor()
    ids, xb = _active_vectors(extractor.model_id, extractor.dim)
    vector_index.save_index(
        vector_index.build_index(ids, xb),
        settings.LOOKALIKE_INDEX_DIR,
        model_id=extractor.model_id,
        weights_id=extractor.weights_id,
    )
    # then the next query is answered from the new version, which holds the twin
    result = similar_to_product(query.pk, k=3)
    assert result.index_version == 2
    assert result.items[0].product.sku == "TWIN-1"


def test_an_indexed_product_gets_its_similar_items_in_one_query(
    small_catalog, django_assert_num_queries, settings
) -> None:
    # given a catalog whose index holds every product (vectors read back from the index), and
    # no catalog store
    settings.LOOKALIKE_CATALOG_STORE = False
    query = small_catalog[0]
    expected = [item.product.pk for item in similar_to_product(query.pk, k=5).items]
    # when asked again, the product, its candidates and their aesthetics scores come at once
    with django_assert_num_queries(1):
        result = similar_to_product(query.pk, k=5)
        shown = [(i.product.pk, i.product.title, i.product.category.slug) for i in result.items]
    # then the answer is the same, with the product the items look like
    assert [pk for pk, _, _ in shown] == expected
    assert result.product.pk == query.pk and result.product.category.slug == query.category.slug
    assert all(title for _, title, _ in shown)


def test_the_index_vector_and_the_stored_vector_give_the_same_answer(
    small_catalog, monkeypatch
) -> None:
    # given a product's similar items from the vector the index holds
    query = small_catalog[3]
    from_index = similar_to_product(query.pk, k=6)
    # when the index does not hold the product (as before its first sync), its stored
    # vector goes through the version's post-processing instead
    from recommender import services

    monkeypatch.setattr(services, "_indexed_vector", lambda index, product_id: None)
    from_stored = similar_to_product(query.pk, k=6)
    # then both list the same products with the same similarities
    assert [i.product.pk for i in from_stored.items] == [i.product.pk for i in from_index.items]
    assert np.allclose(
        [i.similarity for i in from_stored.items],
        [i.similarity for i in from_index.items],
        atol=1e-5,
    )
    assert from_stored.product.pk == query.pk


def test_an_unknown_or_inactive_product_is_not_found_on_either_path(small_catalog) -> None:
    with pytest.raises(Product.DoesNotExist):
        similar_to_product(10**9, k=3)
    # an inactive product the index still holds (the fast path) is not found either
    gone = small_catalog[1]
    catalog_update(Product.objects.filter(pk=gone.pk), is_active=False)
    with pytest.raises(Product.DoesNotExist):
        similar_to_product(gone.pk, k=3)
    # nor is a product outside the catalog asked for
    with pytest.raises(Product.DoesNotExist):
        similar_to_product(small_catalog[2].pk, k=3, catalog=Catalog(merchant_id=-1))


def test_a_single_query_search_leaves_the_thread_setting_as_it_was(small_catalog) -> None:
    import faiss

    from recommender.services import serving_index

    index, _ = serving_index()
    faiss.omp_set_num_threads(2)
    vector_index.search(index, index.reconstruct(small_catalog[0].pk), 3)
    assert faiss.omp_get_max_threads() == 2


def test_a_photo_whose_vector_is_not_finite_even_in_fp32_fails_and_stores_nothing(
    small_catalog, tmp_path
) -> None:
    # given an fp32 extractor whose last convolution overflows even fp32 for every photo
    import torch

    from embeddings.extractor import _build_extractor
    from embeddings.registry import get_backbone

    weights = tmp_path / "resnet18.pth"
    torch.save(get_backbone("resnet18").build().state_dict(), weights)
    broken = _build_extractor("resnet18", str(weights), "cpu", "fp32", download=False)
    last = [m for m in broken.model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(1e38)
    product = small_catalog[0]
    # when its photo is embedded with it
    report = products_embed([product.pk], extractor=broken)
    # then the product fails with a reason that says what to do, and no vector is stored
    product.refresh_from_db()
    assert product.embedding_status == EmbeddingStatus.FAILED
    assert "not finite" in product.embedding_error and "another photo" in product.embedding_error
    assert list(report.failed) == [product.pk]
    assert not ImageVector.objects.filter(model_id=broken.model_id).exists()
