"""Ordering similar items: a blend of visual similarity and the photo's aesthetics score."""

from __future__ import annotations

import numpy as np

# Aesthetics scores live on the 0-100 rating scale; the blend uses them on 0-1 like cosine.
AESTHETICS_SCALE = 100.0


def blend(similarity: np.ndarray, aesthetics: np.ndarray, weight: float) -> np.ndarray:
    """Final scores: (1 - weight) * similarity + weight * aesthetics / 100.

    A photo without a score (NaN) gets the candidates' median, so it is neither pushed up nor
    down. Weight 0, or no scored candidate at all, returns the similarities unchanged.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"The aesthetics weight must be between 0 and 1, not {weight}.")
    similarity = np.asarray(similarity, dtype=np.float64)
    a = np.asarray(aesthetics, dtype=np.float64)
    known = ~np.isnan(a)
    scored = np.count_nonzero(known)
    if weight == 0.0 or not scored:
        return similarity
    if scored < len(a):  # (np.median costs more than the rest of a call's blend)
        a = np.where(known, a, np.median(a[known]))
    a = np.minimum(np.maximum(a / AESTHETICS_SCALE, 0.0), 1.0)
    return (1.0 - weight) * similarity + weight * a


def rerank(similarity: np.ndarray, aesthetics: np.ndarray, weight: float) -> tuple:
    """(order, final scores): candidate indices best first; ties keep the similarity order."""
    final = blend(similarity, aesthetics, weight)
    order = np.argsort(-final, kind="stable")
    return order, final
