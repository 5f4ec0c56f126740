"""Retrieval metrics over ranked result lists: plain numpy, one row per query."""

from __future__ import annotations

import numpy as np


def relevance(gallery_labels: np.ndarray, query_labels: np.ndarray, I: np.ndarray) -> np.ndarray:
    """(n_queries, k) booleans: is the i-th result of each query of the query's label."""
    return np.asarray(gallery_labels)[I] == np.asarray(query_labels)[:, None]


def precision_at_k(rel: np.ndarray, k: int) -> float:
    """Mean share of relevant items among each query's first k results."""
    return float(rel[:, :k].sum(axis=1).mean() / k)


def average_precision_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k per query: sum of precision@i at each relevant rank i <= k, over min(k, relevant)."""
    rel = rel[:, :k].astype(np.float64)
    precision_at_rank = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    denominator = np.minimum(k, np.asarray(n_relevant)).astype(np.float64)
    hits = (precision_at_rank * rel).sum(axis=1)
    # A query with nothing relevant in the gallery scores 0 rather than dividing by zero.
    return np.divide(hits, denominator, out=np.zeros_like(hits), where=denominator > 0)


def mean_average_precision_at_k(rel: np.ndarray, n_relevant: np.ndarray, k: int) -> float:
    """mAP@k: the mean of AP@k over queries."""
    return float(average_precision_at_k(rel, n_relevant, k).mean())


def recall_at_k(I: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of queries whose target id is among their first k results."""
    return float((I[:, :k] == np.asarray(targets)[:, None]).any(axis=1).mean())
