"""Image embeddings for Lookalike: plain PyTorch, importable without Django."""

from embeddings.extractor import Extractor, embed_images, load_extractor
from embeddings.images import ImageRejected, open_image
from embeddings.registry import (
    Backbone,
    WeightsUnavailable,
    get_backbone,
    list_backbones,
    resolve_backbone_name,
)

__all__ = [
    "Backbone",
    "Extractor",
    "ImageRejected",
    "WeightsUnavailable",
    "embed_images",
    "get_backbone",
    "list_backbones",
    "load_extractor",
    "open_image",
    "resolve_backbone_name",
]
