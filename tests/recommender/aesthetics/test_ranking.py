"""The blend of similarity and aesthetics over the candidates."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.ranking import blend, rerank


def test_weight_zero_keeps_the_similarity_order_exactly():
    # given candidates in similarity order, the least similar having the best photo
    similarity = np.array([0.91, 0.90, 0.90, 0.72, 0.50])
    aesthetics = np.array([10.0, 80.0, np.nan, 30.0, 99.0])
    # when
    order, final = rerank(similarity, aesthetics, weight=0.0)
    # then
    assert order.tolist() == [0, 1, 2, 3, 4]
    assert final.tolist() == similarity.tolist()


def test_a_better_photo_overtakes_a_slightly_more_similar_one():
    order, _ = rerank(np.array([0.80, 0.79]), np.array([20.0, 80.0]), weight=0.15)
    assert order.tolist() == [1, 0]


def test_a_much_less_similar_product_is_not_lifted_by_its_photo():
    order, _ = rerank(np.array([0.90, 0.50]), np.array([20.0, 100.0]), weight=0.15)
    assert order.tolist() == [0, 1]


def test_an_unscored_photo_counts_as_the_median():
    final = blend(np.array([0.5, 0.5, 0.5]), np.array([20.0, np.nan, 60.0]), weight=1.0)
    assert final[1] == pytest.approx(0.4)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_it_rejects_a_weight_outside_zero_to_one(weight):
    with pytest.raises(ValueError, match="between 0 and 1"):
        blend(np.array([0.5]), np.array([50.0]), weight)


def test_without_any_scored_photo_the_scores_stay_similarities():
    similarity = np.array([0.9, 0.8])
    assert blend(similarity, np.array([np.nan, np.nan]), weight=0.15).tolist() == [0.9, 0.8]
