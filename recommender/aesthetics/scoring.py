"""Scoring PIL photos exactly as the product does (no Django).

    from PIL import Image
    from recommender.aesthetics.scoring import score_images
    scores = score_images([Image.open("shoe.jpg")])  # numpy array, ~0-100, higher is better

Without a path, the scorer shipped in the repository is used; the shop itself passes the
live scorer's path (see recommender.aesthetics.services.live_scorer_path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from recommender.aesthetics.features import PhotoFeatures
from recommender.aesthetics.model import AestheticsScorer, scorer_load, version_of

SHIPPED_SCORER = Path(__file__).resolve().parent / "shipped" / "scorer.pt"


@dataclass
class LoadedScorer:
    """A scorer file loaded with its feature extractor."""

    scorer: AestheticsScorer
    features: PhotoFeatures
    version: str
    meta: dict

    def score(
        self, images: Sequence[Image.Image], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Calibrated scores (0-100 scale, higher is better) of these photos."""
        xg, xl = self.features(images, progress)
        return self.score_features(xg, xl)

    def score_features(self, xg: np.ndarray, xl: np.ndarray) -> np.ndarray:
        """Calibrated scores from cached features."""
        if not len(xg):
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            raw = self.scorer(torch.as_tensor(xg).float(), torch.as_tensor(xl).float())
            return self.scorer.calibrated(raw).numpy().astype(np.float32)


_loaded: dict[tuple, LoadedScorer] = {}
_lock = threading.Lock()


def load_scorer(path: Path | None = None, device: str = "auto") -> LoadedScorer:
    """The process-wide scorer for a file (the shipped one by default); loaded once per change."""
    path = Path(path or SHIPPED_SCORER)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"No aesthetics scorer at {path}. Train one with `python manage.py train_aesthetics` "
            "or restore the shipped recommender/aesthetics/shipped/scorer.pt."
        ) from None
    key = (str(path), stat.st_mtime_ns, stat.st_size, device)
    with _lock:
        if key not in _loaded:
            scorer, meta, version = scorer_load(path)
            _loaded[key] = LoadedScorer(scorer, PhotoFeatures(device=device), version, meta)
        return _loaded[key]


def scorer_version(path: Path | None = None) -> str:
    """A scorer file's version without loading its model (cached while the file is unchanged)."""
    path = Path(path or SHIPPED_SCORER)
    stat = path.stat()
    return _version(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _version(path: str, mtime_ns: int, size: int) -> str:
    return version_of(Path(path).read_bytes())


def score_images(images: Sequence[Image.Image], path: Path | None = None) -> np.ndarray:
    """Aesthetics scores of PIL images (0-100 scale), as the product computes them."""
    return load_scorer(path).score(images)
