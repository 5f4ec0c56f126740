"""Measures of a scorer against human ratings, the edge-filter baseline, the scatter plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from recommender.aesthetics.pairs import rating_pairs


def pairwise_accuracy(predicted: np.ndarray, truth: np.ndarray, gap: float = 10.0) -> float:
    """Share of pairs whose truth differs by >= gap that the prediction orders the same way."""
    pairs = rating_pairs(truth, gap)
    if not len(pairs):
        raise ValueError(f"No two ratings differ by {gap} or more: nothing to compare.")
    p = np.asarray(predicted, dtype=np.float64)
    return float(np.mean(np.sign(p[pairs[:, 0]] - p[pairs[:, 1]]) == pairs[:, 2]))


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=np.float64)
    r[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    return sums[inverse] / counts[inverse]


def spearman(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rank correlation."""
    a, b = ranks(predicted), ranks(truth)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def edge_variance(image: Image.Image) -> float:
    """The baseline: variance of an edge (Laplacian) filter on the grey photo."""
    grey = image.convert("L")
    edges = grey.filter(ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), 1, 128))
    return float(np.asarray(edges, dtype=np.float32).var())


def scatter_plot(predicted: np.ndarray, truth: np.ndarray, path: Path, title: str) -> Path:
    """Write a scatter plot of predicted score against human rating (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    axes.scatter(truth, predicted, s=8, alpha=0.6)
    axes.set_xlabel("human rating (mean opinion score, 0-100)")
    axes.set_ylabel("predicted score")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
