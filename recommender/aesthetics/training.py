"""Training the scorer on pairs with the hinge loss, over cached features (no Django)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from recommender.aesthetics.model import AestheticsScorer

logger = logging.getLogger(__name__)


def hinge_loss(s1: torch.Tensor, s2: torch.Tensor, y: torch.Tensor, delta: float = 1.0):
    """Mean of max(0, delta - y * (s1 - s2)): the better photo must win by a margin."""
    return torch.clamp(delta - y * (s1 - s2), min=0).mean()


@dataclass
class TrainConfig:
    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-2
    delta: float = 1.0
    pairs_per_step: int = 4096
    seed: int = 0
    # Each source's share of the loss (ratings, degradations, clicks).
    source_weights: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingSet:
    """All photos' features and the pairs over them, by source."""

    xg: torch.Tensor
    xl: torch.Tensor
    pairs: dict[str, np.ndarray]


def train_scorer(
    data: TrainingSet,
    config: TrainConfig,
    progress: Callable[[int, float], None] | None = None,
    device: torch.device | None = None,
) -> tuple[AestheticsScorer, list[float]]:
    """Fit a new scorer on the pairs; returns it (eval mode, on the CPU) and the loss curve."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scorer = AestheticsScorer()
    scorer.fit_normalisation(data.xg, data.xl)
    scorer.to(device).train()
    xg, xl = data.xg.to(device), data.xl.to(device)
    optimiser = torch.optim.AdamW(scorer.parameters(), config.lr, weight_decay=config.weight_decay)
    sources = {name: p for name, p in data.pairs.items() if len(p)}
    if not sources:
        raise ValueError("There are no training pairs: add photos, ratings or clicks.")
    losses = []
    for step in range(config.steps):
        # All photos are scored at once (cheap heads); the loss samples pairs per source.
        scores = scorer(xg, xl)
        loss = torch.zeros((), device=device)
        for name, pairs in sources.items():
            batch = pairs[rng.integers(0, len(pairs), min(len(pairs), config.pairs_per_step))]
            b = torch.as_tensor(batch, device=device)
            weight = config.source_weights.get(name, 1.0)
            loss = loss + weight * hinge_loss(
                scores[b[:, 0]], scores[b[:, 1]], b[:, 2].float(), config.delta
            )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step, losses[-1])
    return scorer.cpu().eval(), losses


def raw_scores(scorer: AestheticsScorer, xg: torch.Tensor, xl: torch.Tensor) -> np.ndarray:
    """The scorer's raw scores for cached features, in batches."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(xg), 256):
            out.append(scorer(xg[start : start + 256], xl[start : start + 256]))
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def calibrate(scorer: AestheticsScorer, raw: np.ndarray, ratings: np.ndarray) -> None:
    """Fit scale and shift so calibrated scores match the 0-100 ratings (least squares)."""
    scale, shift = np.polyfit(raw.astype(np.float64), ratings.astype(np.float64), 1)
    with torch.no_grad():
        scorer.scale.fill_(float(scale))
        scorer.shift.fill_(float(shift))
