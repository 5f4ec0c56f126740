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


class ApiKey(models.Model):
    """A partner's key to one merchant's catalog: a public prefix and a hashed secret."""

    merchant = models.ForeignKey("shop.Merchant", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. 'blog widget'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    # SHA-256 of the secret. The secret is 240 random bits, so a slow password hash would add
    # latency to every call and no protection; the secret itself is never stored.
    secret_hash = models.CharField(max_length=64, editable=False)
    allowed_origins = models.TextField(
        blank=True,
        help_text="Browser origins allowed to call with this key, one a line "
        "(https://blog.example.com). Empty: server-side use only.",
    )
    # None means the site-wide default (settings.LOOKALIKE_API_*).
    burst_limit = models.PositiveIntegerField(null=True, blank=True)
    sustained_limit = models.PositiveIntegerField(null=True, blank=True)
    daily_quota = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (lk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def origins(self) -> list[str]:
        return [
            line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()
        ]


class ApiUsage(models.Model):
    """Calls made with one key on one day (UTC) to one endpoint, and how many failed."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    endpoint = models.CharField(max_length=40)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day", "endpoint"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "day", "endpoint"], name="one_usage_row_per_key_day_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.day} {self.endpoint}: {self.calls}"


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
        # Catalog stores read the scores given since their last sync.
        indexes = [models.Index(fields=["created_at"])]

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
