"""Training pairs (i, j, y): y = +1 when photo i should score above photo j, else -1.

Three sources, each one function: human ratings with a minimum gap, synthetic degradations
(original > mild > strong), and shopper clicks (a clicked item beats the unclicked ones shown
above it).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def rating_pairs(
    scores: Sequence[float],
    min_gap: float,
    groups: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """Pairs of rated photos whose scores differ by at least min_gap, within a group if given.

    Returns an (M, 3) int array of (i, j, y), each unordered pair once, i < j. Close scores
    are left out: the raters themselves do not agree on their order.
    """
    if min_gap <= 0:
        raise ValueError("min_gap must be positive: pairs of equal scores carry no preference.")
    s = np.asarray(scores, dtype=np.float64)
    i, j = np.triu_indices(len(s), k=1)
    keep = np.abs(s[i] - s[j]) >= min_gap
    if groups is not None:
        g = np.asarray(groups, dtype=object)
        keep &= g[i] == g[j]
    i, j = i[keep], j[keep]
    y = np.where(s[i] > s[j], 1, -1)
    return np.stack([i, j, y], axis=1).astype(np.int64).reshape(-1, 3)


def degradation_pairs(chains: Sequence[Sequence[int]]) -> np.ndarray:
    """Pairs from degradation chains [original, mild, strong]: each earlier one is better."""
    rows = [
        (chain[a], chain[b], 1)
        for chain in chains
        for a in range(len(chain))
        for b in range(a + 1, len(chain))
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def click_pairs(shown: Sequence[Hashable], clicked: set[Hashable]) -> list[tuple]:
    """Preferences from one similar-items list: (clicked, skipped) for each item shown above.

    The shopper looked at the items above a click and passed them over (a skip-above rule,
    as in Joachims' click models); items below a click may never have been seen.
    """
    pairs = []
    for position, item in enumerate(shown):
        if item not in clicked:
            continue
        pairs += [(item, above) for above in shown[:position] if above not in clicked]
    return pairs


def split_pairs(pairs: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training pairs, validation pairs): a pair is held out when both photos are."""
    held = np.zeros(int(pairs[:, :2].max(initial=-1)) + 1, dtype=bool)
    held[held_out[held_out < len(held)]] = True
    both = held[pairs[:, 0]] & held[pairs[:, 1]]
    neither = ~held[pairs[:, 0]] & ~held[pairs[:, 1]]
    # Pairs with one held-out photo are dropped: training on them would leak that photo.
    return pairs[neither], pairs[both]
