"""Precision@10 (same category) and the photo quality of similar items, per blend weight.

Run after `python manage.py demo --no-serve` (same LOOKALIKE_VAR_DIR):
    python scripts/bench_aesthetics_blend.py [--weights 0,0.05,0.1,0.15,0.2,0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import django
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from recommender.aesthetics.services import scores_by_hash  # noqa: E402
from recommender.services import similar_to_product  # noqa: E402
from shop.models import Product  # noqa: E402


def measure(weight: float, k: int = 10) -> dict:
    """Mean precision@k (same category) and mean aesthetics of the top k over the catalog."""
    products = list(Product.objects.filter(is_active=True).select_related("category"))
    scores = scores_by_hash({p.image_hash for p in products})
    precision, quality, similarity = [], [], []
    for product in products:
        items = similar_to_product(product.pk, k, aesthetics_weight=weight).items
        precision.append(np.mean([i.product.category_id == product.category_id for i in items]))
        quality.append(np.mean([scores.get(i.product.image_hash, np.nan) for i in items]))
        similarity.append(np.mean([i.similarity for i in items]))
    return {
        "weight": weight,
        "precision_at_10": round(float(np.mean(precision)), 4),
        "mean_aesthetics_top10": round(float(np.nanmean(quality)), 2),
        "mean_similarity_top10": round(float(np.mean(similarity)), 4),
        "queries": len(products),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default="0,0.05,0.1,0.15,0.2,0.3")
    args = parser.parse_args()
    for weight in [float(w) for w in args.weights.split(",")]:
        print(json.dumps(measure(weight)), flush=True)


if __name__ == "__main__":
    main()
