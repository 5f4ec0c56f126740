"""The live aesthetics scorer in the shop: scoring product photos, replacing the scorer."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings

from recommender.aesthetics.reasons import photo_reasons
from recommender.aesthetics.scoring import (
    SHIPPED_SCORER,
    LoadedScorer,
    load_scorer,
    scorer_version,
)
from recommender.catalog_store import catalog_changed, catalog_version_bump
from recommender.models import PhotoScore
from shop.images import open_stored
from shop.models import Product

logger = logging.getLogger(__name__)

LIVE_POINTER = "live.json"


def live_scorer_path() -> Path:
    """The scorer file in use: the one published under LOOKALIKE_AESTHETICS_DIR, else shipped."""
    pointer = Path(settings.LOOKALIKE_AESTHETICS_DIR) / LIVE_POINTER
    try:
        name = json.loads(pointer.read_text())["file"]
    except FileNotFoundError:
        return SHIPPED_SCORER
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("Ignoring the damaged %s (%s); using the shipped scorer", pointer, exc)
        return SHIPPED_SCORER
    return pointer.parent / name


def live_scorer() -> LoadedScorer:
    """The live scorer, loaded once per process and reloaded when it is replaced."""
    return load_scorer(live_scorer_path(), device=settings.LOOKALIKE_DEVICE)


def live_scorer_meta() -> dict:
    """The live scorer's version and its recorded held-out measures."""
    scorer = live_scorer()
    return {"version": scorer.version, **scorer.meta}


def photos_score(
    product_ids: list[int], progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Score the photos of these products that have no score from the live scorer yet."""
    try:
        scorer = live_scorer()
    except FileNotFoundError as exc:
        # No scorer is no reason to fail (or retry) the embedding task that calls this.
        logger.warning("Photos not scored: %s", exc)
        return {"scored": 0, "reused": 0, "failed": len(product_ids)}
    products = list(Product.objects.filter(pk__in=product_ids).only("pk", "image", "image_hash"))
    known = set(
        PhotoScore.objects.filter(
            scorer_version=scorer.version, image_hash__in={p.image_hash for p in products}
        ).values_list("image_hash", flat=True)
    )
    todo = {p.image_hash: p for p in products if p.image_hash not in known}
    report = {"scored": 0, "reused": len(products) - len(todo), "failed": 0}
    if progress and report["reused"]:
        progress(report["reused"])
    hashes = list(todo)
    for start in range(0, len(hashes), 32):
        report["scored"] += _score_chunk(scorer, [todo[h] for h in hashes[start : start + 32]])
        if progress:
            progress(len(hashes[start : start + 32]))
    report["failed"] = len(todo) - report["scored"]
    return report


def _score_chunk(scorer: LoadedScorer, products: list[Product]) -> int:
    images, kept = [], []
    for product in products:
        try:
            images.append(open_stored(product.image))
            kept.append(product)
        except (OSError, ValueError) as exc:
            # The embedding task records unreadable photos; a score cannot be given either.
            logger.warning("Photo of product %s not scored: %s", product.pk, exc)
    scores = scorer.score(images)
    rows = [
        PhotoScore(
            image_hash=p.image_hash,
            scorer_version=scorer.version,
            score=float(np.clip(s, 0.0, 100.0)),
            reasons=photo_reasons(image),
        )
        for p, s, image in zip(kept, scores, images, strict=True)
    ]
    PhotoScore.objects.bulk_create(rows, ignore_conflicts=True)
    catalog_changed()  # a score reorders similar-item lists; bulk writes send no signal
    return len(rows)


def scores_by_hash(hashes: set[str]) -> dict[str, float]:
    """Live-scorer scores of these photos (photos not scored yet are absent)."""
    try:
        version = scorer_version(live_scorer_path())
    except FileNotFoundError:
        # Without a scorer, lists are ordered by similarity alone rather than failing.
        logger.warning("No aesthetics scorer at %s", live_scorer_path())
        return {}
    return dict(
        PhotoScore.objects.filter(scorer_version=version, image_hash__in=hashes).values_list(
            "image_hash", "score"
        )
    )


class ScorerRefused(Exception):
    """A newly trained scorer did worse on held-out pairs than the live one."""


def scorer_publish(candidate: Path, held_out: dict[str, float], live: dict[str, float]) -> Path:
    """Make a trained scorer live, unless its held-out pairwise accuracy dropped on any source."""
    worse = {
        name: (live[name], value)
        for name, value in held_out.items()
        if name in live and value < live[name]
    }
    if worse:
        detail = ", ".join(f"{n}: {new:.3f} < live {old:.3f}" for n, (old, new) in worse.items())
        raise ScorerRefused(f"Worse on held-out pairs ({detail}); the live scorer stays.")
    directory = Path(settings.LOOKALIKE_AESTHETICS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / candidate.name
    if candidate.resolve() != target.resolve():
        shutil.copyfile(candidate, target)
    pointer = directory / LIVE_POINTER
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(json.dumps({"file": target.name}))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(pointer)
    # Catalog stores reload every score from the new scorer (a file, not a transaction: now).
    catalog_version_bump()
    logger.info("Aesthetics scorer %s is live", target.name)
    return target


def catalog_scores(version: str) -> np.ndarray:
    """Sorted scores of every active product's photo (the percentile reference)."""
    hashes = Product.objects.filter(is_active=True).values_list("image_hash", flat=True)
    scores = PhotoScore.objects.filter(scorer_version=version, image_hash__in=hashes).values_list(
        "score", flat=True
    )
    return np.sort(np.fromiter(scores, dtype=np.float64))
