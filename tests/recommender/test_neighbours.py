"""Neighbour lists: every product searched once per index version, read instead of a search."""

from __future__ import annotations

import hashlib
import logging
from unittest import mock

import numpy as np
import pytest
from kombu.exceptions import OperationalError

from recommender import index as vector_index
from recommender import neighbours, services
from recommender.embedding import current_extractor
from recommender.models import ImageVector
from recommender.neighbours import (
    RECORD,
    NeighbourLists,
    NeighbourReader,
    Stale,
    neighbours_save,
    neighbours_search,
)
from recommender.services import (
    SimilarFilters,
    index_rebuild,
    neighbours_build,
    serving_neighbours,
    similar_to_product,
)
from shop.models import Category, Merchant, Product
from tests.conftest import synthetic_product, synthetic_vector

N = 300
SHA = "ab" * 32  # an index file's checksum


def normalised(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- no Django


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_row_is_what_a_search_with_the_products_own_vector_returns(kind) -> None:
    # given an index of 500 vectors under scattered ids
    ids = np.arange(500, dtype=np.int64) * 7 + 1000
    xb = normalised(500, 32)
    index = vector_index.build_index(ids, xb, kind=kind)
    # when every product is searched once, in chunks
    rows, lists = neighbours_search(index, 16, chunk=64)
    # then each row is that product's own search, best first, itself first
    assert rows.tolist() == sorted(ids.tolist())
    assert lists.dtype == RECORD and lists.shape == (500, 16)
    for r in (0, 137, 499):
        D, I = vector_index.search(index, xb[ids == rows[r]], 16)
        assert lists["id"][r].tolist() == I[0].tolist()
        np.testing.assert_allclose(lists["sim"][r], D[0], atol=1e-5)
        assert lists["id"][r][0] == rows[r]


def test_a_build_stops_when_a_newer_version_is_written() -> None:
    index = vector_index.build_index(np.arange(100), normalised(100, 8), kind="flat")
    answers = iter([True, False])
    with pytest.raises(Stale):
        neighbours_search(index, 8, chunk=10, current=lambda: next(answers))


def test_lists_are_read_memory_mapped_and_missing_ones_are_looked_for_again(tmp_path) -> None:
    # given a reader that asks before the lists exist
    reader = NeighbourReader(tmp_path, check_interval=0.0)
    assert reader.lists(3, SHA) is None
    index = vector_index.build_index(np.arange(50) + 10, normalised(50, 8), kind="flat")
    ids, lists = neighbours_search(index, 5)
    # when they are written
    neighbours_save(tmp_path, 3, SHA, ids, lists)
    # then the next call finds them, mapped from the file (not read into this process)
    found = reader.lists(3, SHA)
    assert not found.lists.flags.owndata and isinstance(found.lists.base, np.memmap)
    assert found.row(10)["id"][0] == 10
    assert found.row(9) is None and found.row(61) is None
    # and a row is found alike by the id table and (ids too sparse for one) by binary search
    asked = [10, 35, 59, 9, 60, -1, -(2**40), 2**62, 2**63 - 1]
    assert found.where is not None
    by_table = [None if row is None else int(row["id"][0]) for row in map(found.row, asked)]
    found.where = None
    by_search = [None if row is None else int(row["id"][0]) for row in map(found.row, asked)]
    assert by_table == by_search == [10, 35, 59, None, None, None, None, None, None]
    # and they are not taken for another version's, nor for another index with that number
    assert reader.lists(4, SHA) is None
    assert reader.lists(3, "0f" * 32) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:-100]),  # cut short
        lambda path: path.write_bytes(b"not a numpy file"),
        lambda path: np.save(path, np.zeros((3, 4), np.float64)),  # another shape and type
    ],
    ids=["truncated", "garbage", "wrong-dtype"],
)
def test_damaged_lists_are_ignored(tmp_path, damage, caplog) -> None:
    index = vector_index.build_index(np.arange(50), normalised(50, 8), kind="flat")
    neighbours_save(tmp_path, 1, SHA, *neighbours_search(index, 5))
    damage(neighbours.lists_path(tmp_path, 1, SHA))
    with caplog.at_level(logging.WARNING, logger="recommender.neighbours"):
        assert NeighbourLists.open(tmp_path, 1, SHA) is None
    assert "Ignoring the neighbour lists of index version 1" in caplog.text


def test_old_versions_lists_are_pruned(tmp_path) -> None:
    index = vector_index.build_index(np.arange(20), normalised(20, 8), kind="flat")
    for version in (1, 2, 3):
        neighbours_save(tmp_path, version, SHA, *neighbours_search(index, 4))
    neighbours.neighbours_prune(tmp_path, older_than=2)
    assert NeighbourLists.open(tmp_path, 1, SHA) is None
    assert NeighbourLists.open(tmp_path, 2, SHA) is not None
    assert NeighbourLists.open(tmp_path, 3, SHA) is not None


# ---------------------------------------------------------------------------- the service


@pytest.fixture
def catalog(db, settings) -> list[Product]:
    """300 products with synthetic vectors in two categories, a tenth out of stock, indexed."""
    extractor = current_extractor()
    merchant = Merchant.objects.create(name="Shoes", slug="shoes")
    categories = [Category.objects.create(name=s.title(), slug=s) for s in ("boots", "clogs")]
    xb = normalised(N, extractor.dim, seed=3)
    products, vectors = [], []
    for n in range(N):
        image_hash = hashlib.sha256(f"photo {n}".encode()).hexdigest()
        products.append(
            synthetic_product(
                image_hash,
                merchant=merchant,
                sku=f"S{n:03d}",
                title=f"Shoe {n}",
                # clogs are rare: a filter on them leaves few of a row's products
                category=categories[1 if n % 25 == 0 else 0],
                stock=0 if n % 10 == 3 else 5,
            )
        )
        vectors.append(synthetic_vector(image_hash, xb[n]))
    Product.objects.bulk_create(products)
    ImageVector.objects.bulk_create(vectors)
    return list(Product.objects.order_by("pk"))


def answer(product_id: int, k: int = 12, **filters) -> list[tuple[int, float]]:
    result = similar_to_product(product_id, k, filters=SimilarFilters(**filters))
    return [(item.card.values[0], item.similarity) for item in result.items]


def same(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> None:
    assert [pk for pk, _ in a] == [pk for pk, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.parametrize("store", [True, False])
def test_the_lists_give_the_answers_a_search_gives(catalog, settings, kind, store) -> None:
    # given an index whose lists were built when it was written (tasks run eagerly here)
    settings.LOOKALIKE_INDEX_KIND = kind
    settings.LOOKALIKE_CATALOG_STORE = store
    manifest = index_rebuild()
    assert serving_neighbours(manifest) is not None
    queries = [p.pk for p in catalog[::37]]
    common = [({}, 12), ({}, 40), ({"in_stock": False}, 12)]
    rare = [({"category": "clogs"}, 5)]  # a row holds two or three clogs: searched
    # when the same calls are answered from the lists and by searching
    with mock.patch.object(vector_index, "search", wraps=vector_index.search) as searched:
        from_lists = {(pk, k, *f): answer(pk, k, **f) for pk in queries for f, k in common}
        assert searched.call_count == 0
        from_lists |= {(pk, k, *f): answer(pk, k, **f) for pk in queries for f, k in rare}
        assert searched.call_count >= len(queries)
    settings.LOOKALIKE_NEIGHBOURS = False
    by_search = {(pk, k, *f): answer(pk, k, **f) for pk in queries for f, k in common + rare}
    # then they are the same
    assert from_lists.keys() == by_search.keys()
    for key, items in from_lists.items():
        same(items, by_search[key])


@pytest.mark.django_db
def test_a_new_version_gets_its_own_lists_and_new_products_show_at_once(catalog, settings) -> None:
    # given an indexed catalog without one product
    last = catalog[-1]
    Product.objects.filter(pk=last.pk).update(is_active=False)
    first = index_rebuild()
    # when it comes back and the index is synced (a new version, whose lists are built)
    Product.objects.filter(pk=last.pk).update(is_active=True)
    from recommender.indexing import index_sync

    report = index_sync([last.pk])
    assert report.version == first.version + 1
    # then the product is found like any other: it heads its own nearest neighbour's list
    lists = serving_neighbours(vector_index.read_manifest(settings.LOOKALIKE_INDEX_DIR))
    nearest = int(lists.row(last.pk)["id"][1])
    assert last.pk in [pk for pk, _ in answer(nearest, 60, in_stock=False)]
    # and the version before's lists stay for processes still serving it
    assert NeighbourLists.open(settings.LOOKALIKE_INDEX_DIR, first.version, first.checksum)


@pytest.mark.django_db
def test_a_build_for_a_version_that_is_no_longer_current_does_nothing(catalog, settings) -> None:
    settings.LOOKALIKE_NEIGHBOURS = False  # nothing built on writing
    old = index_rebuild()
    new = index_rebuild()
    settings.LOOKALIKE_NEIGHBOURS = True
    assert neighbours_build(old.version) is None
    assert NeighbourLists.open(settings.LOOKALIKE_INDEX_DIR, old.version, old.checksum) is None
    assert services.neighbours_missing() == new.version
    assert neighbours_build(new.version) == new.version
    assert services.neighbours_missing() is None


@pytest.mark.django_db
def test_the_periodic_reconcile_builds_lists_whose_build_was_lost(catalog, settings) -> None:
    from recommender.tasks import reconcile_index

    # given a version written while the broker was down (its build never queued)
    with mock.patch(
        "recommender.tasks.build_neighbours.delay", side_effect=OperationalError("down")
    ):
        manifest = index_rebuild()
    assert serving_neighbours(manifest) is None
    # when the periodic reconcile runs
    reconcile_index()
    # then the lists are there
    assert NeighbourLists.open(settings.LOOKALIKE_INDEX_DIR, manifest.version, manifest.checksum)
