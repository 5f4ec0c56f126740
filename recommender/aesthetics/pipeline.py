"""From data sources to a trained, calibrated, measured scorer (no Django).

Each source gives photos (features) and pairs over them; a deterministic part of each source
is held out. The held-out pairs decide whether a new scorer may replace the live one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recommender.aesthetics import data, evaluation
from recommender.aesthetics.degradations import DEGRADATIONS, degrade
from recommender.aesthetics.features import PhotoFeatures
from recommender.aesthetics.model import AestheticsScorer
from recommender.aesthetics.pairs import degradation_pairs, rating_pairs, split_pairs
from recommender.aesthetics.training import (
    TrainConfig,
    TrainingSet,
    calibrate,
    raw_scores,
    train_scorer,
)

logger = logging.getLogger(__name__)

DEGRADATION_VERSION = "1"


@dataclass
class Source:
    """One source's photos (features), training pairs and held-out pairs (local indices)."""

    name: str
    xg: np.ndarray
    xl: np.ndarray
    train: np.ndarray
    val: np.ndarray
    scores: np.ndarray | None = None
    held_out: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def ratings_source(
    images_dir: Path,
    scores_csv: Path,
    features: PhotoFeatures,
    cache_dir: Path,
    min_gap: float = 10.0,
    held_fraction: float = 0.2,
    progress: Callable[[int], None] | None = None,
) -> Source:
    """Human ratings: pairs differing by min_gap, a fifth of the photos held out."""
    rated = data.read_ratings(images_dir, scores_csv)
    keys = [data.file_key(p) for p in rated.paths]
    xg, xl = data.cached_features(
        keys,
        lambda i: data.open_photo(rated.paths[i]),
        cache_dir / f"ratings-{_digest(str(scores_csv))}.npz",
        features,
        progress,
    )
    held = data.held_out([p.name for p in rated.paths], held_fraction)
    train, val = split_pairs(rating_pairs(rated.scores, min_gap), held)
    return Source("ratings", xg, xl, train, val, rated.scores, held)


def degradations_source(
    photos: list[Path],
    features: PhotoFeatures,
    cache_dir: Path,
    held_fraction: float = 0.2,
    progress: Callable[[int], None] | None = None,
) -> Source:
    """Synthetic rankings: each photo beats its mild copy, which beats its strong copy."""
    variants = [(p, None, 0) for p in photos] + [
        (p, kind, level) for p in photos for kind in DEGRADATIONS for level in (0, 1)
    ]
    keys = [
        data.file_key(p, f"{kind}:{level}:{DEGRADATION_VERSION}") for p, kind, level in variants
    ]

    def make(i: int):
        path, kind, level = variants[i]
        photo = data.open_photo(path)
        return photo if kind is None else degrade(photo, kind, level)

    xg, xl = data.cached_features(keys, make, cache_dir / "degradations.npz", features, progress)
    n, per_photo = len(photos), 2 * len(DEGRADATIONS)
    chains = [
        [p, n + p * per_photo + 2 * k, n + p * per_photo + 2 * k + 1]
        for p in range(n)
        for k in range(len(DEGRADATIONS))
    ]
    held_photos = set(data.held_out([p.name for p in photos], held_fraction).tolist())
    held_chains = [c for c in chains if c[0] in held_photos]
    train_chains = [c for c in chains if c[0] not in held_photos]
    return Source(
        "degradations", xg, xl, degradation_pairs(train_chains), degradation_pairs(held_chains)
    )


def combine(sources: list[Source]) -> tuple[TrainingSet, dict[str, np.ndarray], list[int]]:
    """All sources' photos in one training set; pairs shifted to global indices."""
    offsets, total = [], 0
    for source in sources:
        offsets.append(total)
        total += len(source.xg)
    xg = torch.as_tensor(np.concatenate([s.xg for s in sources]))
    xl = torch.as_tensor(np.concatenate([s.xl for s in sources]))
    train = {s.name: _shift(s.train, o) for s, o in zip(sources, offsets, strict=True)}
    val = {s.name: _shift(s.val, o) for s, o in zip(sources, offsets, strict=True)}
    return TrainingSet(xg, xl, train), val, offsets


def _shift(pairs: np.ndarray, offset: int) -> np.ndarray:
    shifted = pairs.copy()
    shifted[:, :2] += offset
    return shifted


def fit(
    sources: list[Source], config: TrainConfig, progress: Callable[[int, float], None] | None = None
) -> tuple[AestheticsScorer, dict]:
    """Train, calibrate on the rated photos, and measure on every source's held-out pairs."""
    started = time.perf_counter()
    training, val, offsets = combine(sources)
    scorer, losses = train_scorer(training, config, progress)
    raw = raw_scores(scorer, training.xg, training.xl)
    report = {
        "seconds": round(time.perf_counter() - started, 1),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "losses": losses[:: max(1, len(losses) // 50)],
        "pairs": {name: int(len(p)) for name, p in training.pairs.items()},
        "held_out_pair_accuracy": held_out_accuracy(raw, val),
    }
    for source, offset in zip(sources, offsets, strict=True):
        if source.scores is None:
            continue
        rows = np.arange(offset, offset + len(source.xg))
        train_rows = np.setdiff1d(np.arange(len(source.xg)), source.held_out)
        calibrate(scorer, raw[rows][train_rows], source.scores[train_rows])
        report["ratings_held_out"] = ratings_report(raw[rows], source)
    return scorer, report


def held_out_accuracy(raw: np.ndarray, val: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of held-out pairs ordered right, per source (the replacement guard's measure)."""
    return {
        name: float(np.mean(np.sign(raw[p[:, 0]] - raw[p[:, 1]]) == p[:, 2]))
        for name, p in val.items()
        if len(p)
    }


def ratings_report(raw: np.ndarray, source: Source, gap: float = 10.0) -> dict:
    """Pairwise accuracy at a gap and Spearman on a ratings source's held-out photos."""
    held = source.held_out
    return {
        "photos": int(len(held)),
        "pairwise_accuracy": evaluation.pairwise_accuracy(raw[held], source.scores[held], gap),
        "spearman": evaluation.spearman(raw[held], source.scores[held]),
        "gap": gap,
    }


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def stacked(sources: list[Source]) -> tuple[np.ndarray, np.ndarray]:
    """All sources' features in the order combine() indexes them."""
    return np.concatenate([s.xg for s in sources]), np.concatenate([s.xl for s in sources])
