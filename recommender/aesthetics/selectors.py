"""Reading photo quality for merchant pages: score, percentile in the catalog, reasons."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from recommender.aesthetics.reasons import ADVICE
from recommender.aesthetics.scoring import scorer_version
from recommender.aesthetics.services import catalog_scores, live_scorer_path
from recommender.models import PhotoScore
from shop.models import Product


@dataclass(frozen=True)
class PhotoQuality:
    """A product photo's aesthetics score and how it stands in the catalog."""

    score: float
    percentile: int
    flagged: bool
    reasons: list[str]

    @property
    def advice(self) -> list[str]:
        """What to do about each reason, in the merchant's words."""
        return [ADVICE[r] for r in self.reasons if r in ADVICE]


def photo_quality_attach(products: Iterable[Product]) -> list[Product]:
    """Set `photo_quality` (a PhotoQuality, or None while not scored) on each product."""
    products = list(products)
    try:
        version = scorer_version(live_scorer_path())
    except FileNotFoundError:
        version = ""
    rows = {
        row.image_hash: row
        for row in PhotoScore.objects.filter(
            scorer_version=version, image_hash__in={p.image_hash for p in products}
        )
    }
    reference = catalog_scores(version) if rows else np.zeros(0)
    for product in products:
        row = rows.get(product.image_hash)
        product.photo_quality = None if row is None else _quality(row, reference)
    return products


def _quality(row: PhotoScore, reference: np.ndarray) -> PhotoQuality:
    # Percentile: the share of the catalog's photos that score below this one.
    below = np.searchsorted(reference, row.score, side="left")
    percentile = int(100 * below / len(reference)) if len(reference) else 50
    flagged = percentile < settings.LOOKALIKE_AESTHETICS_FLAG_PERCENTILE
    reasons = list(row.reasons) if flagged else []
    if flagged and not reasons:
        reasons = ["overall look"]
    return PhotoQuality(round(row.score, 1), percentile, flagged, reasons)
