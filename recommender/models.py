"""Stored vectors: one per (photo content hash, model), shared by products with that photo."""

from __future__ import annotations

import numpy as np
from django.db import models


class ImageVector(models.Model):
    image_hash = models.CharField(max_length=64)
    model_id = models.CharField(max_length=100)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image_hash", "model_id"], name="one_vector_per_image_and_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_hash[:12]} ({self.model_id})"

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype=np.float32)


class PhotoScore(models.Model):
    """A photo's aesthetics score: one per (photo content hash, scorer version)."""

    image_hash = models.CharField(max_length=64)
    scorer_version = models.CharField(max_length=40)
    score = models.FloatField()
    # Likely reasons a photo looks poor (blurry, dark, ...), measured when it was scored.
    reasons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image_hash", "scorer_version"], name="one_score_per_image_and_scorer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_hash[:12]} {self.score:.1f} ({self.scorer_version})"


class SimilarImpression(models.Model):
    """A similar-items list shown to a shopper: which products, in which order, for what query."""

    token = models.CharField(max_length=32, unique=True)
    query_product_id = models.BigIntegerField(null=True, blank=True)
    # "product" (search by click / product page) or "photo" (search by photo).
    query_kind = models.CharField(max_length=10)
    product_ids = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.query_kind} {self.query_product_id or ''} ({len(self.product_ids)} shown)"


class SimilarClick(models.Model):
    """A click on an item of a shown similar-items list."""

    impression = models.ForeignKey(
        SimilarImpression, on_delete=models.CASCADE, related_name="clicks"
    )
    product_id = models.BigIntegerField()
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["impression", "product_id"], name="one_click_per_item_and_impression"
            ),
        ]

    def __str__(self) -> str:
        return f"click on {self.product_id} at {self.position}"
