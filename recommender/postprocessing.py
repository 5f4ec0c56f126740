"""Learned post-processing (whitening, projection head) fitted on the catalog at each rebuild.

The fitted maps are saved beside the index version they were fitted with (see
``recommender.index.save_index``) and loaded with it, so a query always passes through the
maps its index was built with.
"""

from __future__ import annotations

import threading

import numpy as np
from django.conf import settings

from embeddings.pipeline import Pipeline
from embeddings.postprocess import PostProcessor, fit_postprocessor
from recommender import index as vector_index
from shop.models import Product

_cache: dict[tuple[str, int], PostProcessor] = {}
_cache_lock = threading.Lock()


def postprocessor_fit(pipeline: Pipeline, ids: np.ndarray, xb: np.ndarray) -> PostProcessor:
    """Fit the configured learned parts on the catalog's vectors and categories."""
    config = pipeline.config
    if not config.whiten_dims and not config.head_weight:
        return PostProcessor()
    categories = dict(Product.objects.filter(pk__in=ids.tolist()).values_list("pk", "category_id"))
    labels = [str(categories[int(pk)]) for pk in ids]
    return fit_postprocessor(
        xb,
        labels,
        whiten_dims=config.whiten_dims,
        head_weight=config.head_weight,
        parts=pipeline.parts,
    )


def serving_postprocessor(manifest: vector_index.Manifest) -> PostProcessor:
    """The post-processing saved with this index version (identity when it has none)."""
    key = (str(settings.LOOKALIKE_INDEX_DIR), manifest.version)
    with _cache_lock:
        if key not in _cache:
            data = vector_index.read_postprocessor(settings.LOOKALIKE_INDEX_DIR, manifest)
            _cache[key] = PostProcessor.from_bytes(data) if data else PostProcessor()
        return _cache[key]
