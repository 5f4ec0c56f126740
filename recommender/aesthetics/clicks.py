"""Shopper clicks on similar-items lists: logging them, and turning them into training pairs."""

from __future__ import annotations

import secrets

import numpy as np
from django.db import IntegrityError, transaction

from recommender.aesthetics import data
from recommender.aesthetics.features import PhotoFeatures
from recommender.aesthetics.pairs import click_pairs, split_pairs
from recommender.aesthetics.pipeline import Source
from recommender.models import SimilarClick, SimilarImpression
from shop.images import open_stored
from shop.models import Product


class BadClick(ValueError):
    """A click beacon that does not match a shown list (the message says why)."""


def impression_log(product_ids: list[int], query_kind: str, query_product_id: int | None) -> str:
    """Record that a similar-items list was shown; returns its token for click beacons."""
    token = secrets.token_hex(12)
    SimilarImpression.objects.create(
        token=token,
        query_kind=query_kind,
        query_product_id=query_product_id,
        product_ids=[int(i) for i in product_ids],
    )
    return token


def impression_log_result(result, query_kind: str, query_product_id: int | None) -> str:
    """Log a shown similar-items result (a SimilarResult or None); '' when nothing was shown."""
    if result is None or not result.items:
        return ""
    ids = [item.product.pk for item in result.items]
    return impression_log(ids, query_kind, query_product_id)


def click_log(token: str, product_id: int) -> SimilarClick:
    """Record a click on an item of a shown list; the item must have been in it."""
    impression = SimilarImpression.objects.filter(token=token).first()
    if impression is None:
        raise BadClick("Unknown list token.")
    if product_id not in impression.product_ids:
        raise BadClick(f"Product {product_id} was not shown in this list.")
    position = impression.product_ids.index(product_id)
    try:
        with transaction.atomic():
            return SimilarClick.objects.create(
                impression=impression, product_id=product_id, position=position
            )
    except IntegrityError:
        # A second click on the same item of the same list adds no preference.
        return SimilarClick.objects.get(impression=impression, product_id=product_id)


def click_preferences() -> list[tuple[int, int]]:
    """(preferred product id, skipped product id) from every clicked list."""
    preferences = []
    impressions = SimilarImpression.objects.filter(clicks__isnull=False).distinct()
    for impression in impressions.prefetch_related("clicks"):
        clicked = {c.product_id for c in impression.clicks.all()}
        preferences += click_pairs(impression.product_ids, clicked)
    return preferences


def clicks_source(
    features: PhotoFeatures, cache_dir, held_fraction: float = 0.2, progress=None
) -> Source:
    """Click preferences as training pairs over the products' photos (by content hash)."""
    preferences = click_preferences()
    products = Product.objects.in_bulk({p for pair in preferences for p in pair})
    hashes = sorted({p.image_hash for p in products.values()})
    where = {h: i for i, h in enumerate(hashes)}
    paths = {p.image_hash: p.image for p in products.values()}
    rows = [
        (where[products[a].image_hash], where[products[b].image_hash], 1)
        for a, b in preferences
        if a in products and b in products and products[a].image_hash != products[b].image_hash
    ]
    pairs = np.array(rows, dtype=np.int64).reshape(-1, 3)
    xg, xl = data.cached_features(
        hashes,
        lambda i: open_stored(paths[hashes[i]]),
        cache_dir / "clicks.npz",
        features,
        progress,
    )
    train, val = split_pairs(pairs, data.held_out(hashes, held_fraction))
    return Source("clicks", xg, xl, train, val)
