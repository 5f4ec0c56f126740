"""Similar items ranked ahead: the same answers calls work out one by one, kept in step with
the catalog."""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from unittest import mock

import numpy as np
import pytest

from recommender import answers as answers_module
from recommender import services
from recommender.answers import UNANSWERED, AnswerKeeper, _touching
from recommender.catalog_store import catalog_snapshot, live_scorer_version
from recommender.embedding import current_extractor
from recommender.models import ImageVector, PhotoScore
from recommender.neighbours import RECORD, NeighbourLists
from recommender.services import (
    Catalog,
    SimilarFilters,
    index_rebuild,
    serving_index,
    serving_neighbours,
    similar_to_product,
)
from shop.models import Category, Merchant, Product
from tests.conftest import catalog_update, synthetic_product, synthetic_vector

pytestmark = pytest.mark.django_db


def make_catalog(n: int, seed: int = 5) -> list[Product]:
    """n products with synthetic vectors, indexed with their lists: 19 in 20 of one merchant
    (the rest of another), one in 16 out of stock, one in 20 inactive, and a third of the
    photos without an aesthetics score (some scores tied)."""
    extractor = current_extractor()
    rng = np.random.default_rng(seed)
    merchants = [Merchant.objects.create(name=f"Shoes {m}", slug=f"shoes-{m}") for m in range(2)]
    category = Category.objects.create(name="Boots", slug="boots")
    centres = rng.standard_normal((6, extractor.dim)).astype(np.float32)
    products, vectors, scores = [], [], []
    scorer = live_scorer_version()
    for i in range(n):
        image_hash = hashlib.sha256(f"photo {seed} {i}".encode()).hexdigest()
        products.append(
            synthetic_product(
                image_hash,
                merchant=merchants[1 if i % 20 == 9 else 0],
                sku=f"S{i:04d}",
                title=f"Shoe {i}",
                category=category,
                stock=0 if i % 16 == 3 else 4,
                is_active=i % 20 != 7,
            )
        )
        x = centres[i % 6] + 0.6 * rng.standard_normal(extractor.dim)
        vectors.append(synthetic_vector(image_hash, x))
        if i % 3 and scorer is not None:
            score = float(rng.integers(20, 30)) if i % 5 == 0 else float(rng.uniform(0, 100))
            scores.append(PhotoScore(image_hash=image_hash, scorer_version=scorer, score=score))
    Product.objects.bulk_create(products)
    ImageVector.objects.bulk_create(vectors)
    PhotoScore.objects.bulk_create(scores)
    index_rebuild()
    return list(Product.objects.filter(is_active=True).order_by("pk"))


def call(product: Product, k: int = 12, **options) -> list[tuple]:
    """A partner's call for a product of its catalog (the key's merchant, in stock), as
    (id, price, score, similarity, aesthetics) of each item, and the product the items look
    like."""
    filters = SimilarFilters(merchant_id=product.merchant_id, in_stock=True)
    filters = SimilarFilters(**{**filters.__dict__, **options.pop("filters", {})})
    result = similar_to_product(
        product.pk, k, filters=filters, catalog=Catalog(product.merchant_id), **options
    )
    items = [
        (i.card.values[0], i.card.values[5], i.score, i.similarity, i.aesthetics)
        for i in result.items
    ]
    return [*items, ("product", result.product.pk)]


def worked_out(settings, products: list[Product], **options) -> dict[int, list[tuple]]:
    """Each product's answer as calls work it out one by one."""
    mode = settings.LOOKALIKE_DEFAULT_ANSWERS
    settings.LOOKALIKE_DEFAULT_ANSWERS = "off"
    try:
        return {p.pk: call(p, **options) for p in products}
    finally:
        settings.LOOKALIKE_DEFAULT_ANSWERS = mode


def current_answers():
    index, manifest = serving_index()
    lists = serving_neighbours(manifest)
    snapshot = catalog_snapshot(None, manifest.version)
    answers = services._answer_keeper.current
    assert answers is not None and answers.lists is lists and answers.token == snapshot.token
    return answers


@pytest.mark.parametrize("weight", [0.15, 0.0, 1.0])
def test_answers_ranked_ahead_are_the_answers_calls_work_out(settings, weight) -> None:
    # given a catalog with its neighbour lists, and an aesthetics weight
    settings.LOOKALIKE_AESTHETICS_WEIGHT = weight
    products = make_catalog(400)
    expected = worked_out(settings, products)
    # when every product is asked for with the default parameters, from the answers
    with mock.patch.object(services, "_similar", wraps=services._similar) as one_by_one:
        got = {p.pk: call(p) for p in products}
    # then each answer is the same, float for float
    assert got == expected
    # and most rows were answered ahead (the second merchant's rows hold too few of its own
    # products, and are searched further by their calls)
    answers = current_answers()
    answered = int(np.count_nonzero(answers.count != UNANSWERED))
    assert answered >= 0.75 * len(products)
    assert one_by_one.call_count == len(products) - answered
    assert any(items[0][4] is None for items in got.values())  # unscored photos among them


def test_fewer_items_than_the_default_come_from_the_same_ranking(settings) -> None:
    products = make_catalog(300)
    expected = worked_out(settings, products[:60], k=5)
    with mock.patch.object(services, "_similar", wraps=services._similar) as one_by_one:
        got = {p.pk: call(p, k=5) for p in products[:60]}
    assert got == expected
    assert one_by_one.call_count < 10


@pytest.mark.parametrize(
    "options",
    [
        {"k": 13},
        {"k": 60},
        {"aesthetics_weight": 0.5},
        {"filters": {"in_stock": False}},
        {"filters": {"category": "boots"}},
        {"filters": {"max_price": Decimal("20")}},
        {"filters": {"merchant_id": None}},
    ],
)
def test_calls_with_other_parameters_are_worked_out_as_they_come(settings, options) -> None:
    products = make_catalog(200)
    sample = products[::17]
    expected = worked_out(settings, sample, **options)
    with mock.patch.object(services._answer_keeper, "get") as ranked_ahead:
        got = {p.pk: call(p, **options) for p in sample}
    assert got == expected
    assert ranked_ahead.call_count == 0


def test_a_small_index_answers_rows_with_few_candidates(settings) -> None:
    # given fewer products than a call's candidates (its search holds the whole index)
    products = make_catalog(30)
    expected = worked_out(settings, products)
    got = {p.pk: call(p) for p in products}
    assert got == expected
    assert np.all(current_answers().count != UNANSWERED)


def test_a_catalog_change_moves_the_answers_on_without_the_rows_it_touches(settings) -> None:
    # given answers ranked ahead
    products = make_catalog(300)
    {p.pk: call(p) for p in products}
    before = current_answers()
    assert services._answer_keeper.partial is False
    # when a product sells out and another's photo gets a new score
    sold_out, rescored = products[10], products[20]
    catalog_update(Product.objects.filter(pk=sold_out.pk), stock=0)
    PhotoScore.objects.update_or_create(
        image_hash=rescored.image_hash,
        scorer_version=live_scorer_version(),
        defaults={"score": 99.0},
    )
    catalog_update(Product.objects.filter(pk=rescored.pk))
    services._answer_keeper.next_full = time.monotonic() + 3600  # no full ranking yet
    # then calls give what they would work out on the changed catalog
    products = [p for p in Product.objects.filter(is_active=True).order_by("pk")]
    expected = worked_out(settings, products)
    assert {p.pk: call(p) for p in products} == expected
    # from the answers moved on: the rows holding either product are dropped, no other
    moved = current_answers()
    assert moved.token != before.token and services._answer_keeper.partial
    lists = moved.lists
    holds = np.isin(lists.lists["id"], [sold_out.pk, rescored.pk]).any(axis=1)
    assert np.all(moved.count[holds] == UNANSWERED)
    assert np.array_equal(moved.count[~holds], before.count[~holds])
    # and once a full ranking is due, every row is ranked again
    services._answer_keeper.next_full = float("-inf")
    assert {p.pk: call(p) for p in products} == expected
    again = current_answers()
    assert services._answer_keeper.partial is False
    answered_before = np.count_nonzero(~holds & (moved.count >= 0))
    assert np.count_nonzero(again.count != UNANSWERED) > answered_before


def test_an_edit_that_changes_no_ones_place_keeps_every_row_answered(settings) -> None:
    # given answers ranked ahead
    products = make_catalog(200)
    {p.pk: call(p) for p in products}
    before = current_answers()
    # when products get a new title and price (nothing a default call ranks by)
    catalog_update(Product.objects.filter(pk__in=[p.pk for p in products[:30]]), price=12)
    services._answer_keeper.next_full = time.monotonic() + 3600
    # then the answers move on whole, and show the new prices
    expected = worked_out(settings, products)
    got = {p.pk: call(p) for p in products}
    assert got == expected
    assert any(item[1] == 12 for items in got.values() for item in items[:-1])
    moved = current_answers()
    assert moved.token != before.token and np.array_equal(moved.count, before.count)
    assert services._answer_keeper.partial is False


def test_answers_ranked_in_a_thread_serve_once_ready(settings) -> None:
    # given the production setting: ranking in a thread of the process's own
    products = make_catalog(200)
    settings.LOOKALIKE_DEFAULT_ANSWERS = "background"
    expected = worked_out(settings, products[:20])
    # when calls come before and after the ranking is done
    first = {p.pk: call(p) for p in products[:20]}
    deadline = time.monotonic() + 30
    while services._answer_keeper.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    later = {p.pk: call(p) for p in products[:20]}
    # then both are the same answers, the later ones from the ranking
    assert first == expected == later
    assert current_answers() is not None


def test_a_failed_ranking_leaves_calls_working_and_waits_before_trying_again(
    settings, caplog
) -> None:
    products = make_catalog(100)
    expected = worked_out(settings, products[:10])
    with mock.patch.object(answers_module, "rank_all", side_effect=MemoryError) as ranking:
        got = {p.pk: call(p) for p in products[:10]}
    assert got == expected
    assert ranking.call_count == 1
    assert "Ranking similar items ahead failed" in caplog.text
    assert services._answer_keeper.current is None
    assert services._answer_keeper.next_full > time.monotonic() + 30


def test_a_full_ranking_waits_nine_times_as_long_as_the_last_took() -> None:
    # given a keeper whose last full ranking took 0.2 s
    keeper = AnswerKeeper()
    lists = NeighbourLists(np.arange(3, dtype=np.int64), np.zeros((3, 2), dtype=RECORD))
    snapshot = mock.Mock(token=1, changes={})
    with mock.patch.object(answers_module, "rank_all") as ranking:
        ranking.return_value = mock.Mock(token=1, fits=lambda *a: True)
        ranking.side_effect = lambda *a: (time.sleep(0.2), ranking.return_value)[1]
        keeper.get(lists, snapshot, 3, mock.sentinel.defaults, background=False)
        # when a snapshot comes that the answers cannot move on to
        later = mock.Mock(token=2, changes={})
        got = keeper.get(lists, later, 3, mock.sentinel.defaults, background=False)
    # then it is not ranked until 1.8 s have passed
    assert got is None and ranking.call_count == 1
    assert 1.7 < keeper.next_full - time.monotonic() < 1.81


@pytest.mark.parametrize("spread", [1, 10_000])
def test_rows_touching_changed_products_are_found_for_dense_and_sparse_ids(spread) -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(1, 2001, dtype=np.int64) * spread
    lists = np.zeros((2000, 16), dtype=RECORD)
    lists["id"] = rng.choice(ids, size=(2000, 16))
    lists["id"][::50, -1] = -1  # short rows
    lists["id"][::70, -2] = ids[-1] * 5  # an id past every row's (the index's, not the store's)
    changed = np.array([ids[5], ids[777], ids[-1] * 5], dtype=np.int64)
    touched = _touching(NeighbourLists(ids, lists), changed)
    expected = np.isin(ids, changed) | np.isin(lists["id"], changed).any(axis=1)
    assert np.array_equal(touched, expected) and 0 < touched.sum() < len(ids)
