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
