"""Retrieval metrics against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import metrics


def test_precision_at_k_counts_relevant_results_among_the_first_k() -> None:
    # given two queries: hits at ranks 1 and 3, and a single hit at rank 2
    rel = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], bool)
    # then P@1 = (1 + 0) / 2, P@2 = (1/2 + 1/2) / 2, P@4 = (2/4 + 1/4) / 2
    assert metrics.precision_at_k(rel, 1) == pytest.approx(0.5)
    assert metrics.precision_at_k(rel, 2) == pytest.approx(0.5)
    assert metrics.precision_at_k(rel, 4) == pytest.approx(0.375)


def test_average_precision_divides_by_the_relevant_items_that_fit_in_k() -> None:
    # given hits at ranks 1 and 3 with 2 relevant items in the gallery
    rel = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], bool)
    n_relevant = np.array([2, 5, 0])
    # when
    ap = metrics.average_precision_at_k(rel, n_relevant, 4)
    # then AP = (1/1 + 2/3) / 2; (1/2) / min(4, 5); nothing relevant -> 0
    np.testing.assert_allclose(ap, [(1 + 2 / 3) / 2, 0.5 / 4, 0.0])
    assert metrics.mean_average_precision_at_k(rel, n_relevant, 4) == pytest.approx(
        ((1 + 2 / 3) / 2 + 0.125) / 3
    )


def test_recall_at_k_finds_the_target_among_the_first_k() -> None:
    I = np.array([[7, 3, 5], [2, 9, 1], [4, 4, 4]])
    targets = np.array([7, 1, 8])
    assert metrics.recall_at_k(I, targets, 1) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(I, targets, 3) == pytest.approx(2 / 3)


def test_relevance_compares_result_labels_with_the_query_label() -> None:
    rel = metrics.relevance(np.array(["a", "b", "a"]), np.array(["a", "b"]), np.array([[2, 1]] * 2))
    assert rel.tolist() == [[True, False], [False, True]]
