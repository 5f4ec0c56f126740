"""The process's embedding model, chosen from settings once and loaded once."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings

from embeddings import Extractor, load_extractor, resolve_backbone_name

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_choice: BackboneChoice | None = None


@dataclass(frozen=True)
class BackboneChoice:
    name: str
    reason: str
    weights_file: str | None


def backbone_choice() -> BackboneChoice:
    """Which backbone this process uses and why ('auto' prefers resnet50)."""
    global _choice
    with _lock:
        if _choice is None:
            name, reason = resolve_backbone_name(
                settings.LOOKALIKE_BACKBONE,
                settings.LOOKALIKE_WEIGHTS_FILE,
                download=settings.LOOKALIKE_WEIGHTS_DOWNLOAD,
            )
            # A configured weights file belongs to the configured backbone, not to a fallback.
            fell_back = settings.LOOKALIKE_BACKBONE == "auto" and name != "resnet50"
            weights_file = None if fell_back else settings.LOOKALIKE_WEIGHTS_FILE
            _choice = BackboneChoice(name, reason, weights_file)
            logger.info("Backbone: %s (%s)", name, reason)
        return _choice


def current_extractor() -> Extractor:
    """The loaded extractor for the configured backbone."""
    choice = backbone_choice()
    return load_extractor(
        choice.name,
        weights_file=choice.weights_file,
        device=settings.LOOKALIKE_DEVICE,
        precision=settings.LOOKALIKE_PRECISION,
        download=settings.LOOKALIKE_WEIGHTS_DOWNLOAD,
    )


def reset_backbone_choice() -> None:
    """Forget the choice (tests and settings changes)."""
    global _choice
    with _lock:
        _choice = None


class ModelUnavailable(Exception):
    """The index was built with a model this process cannot load."""


def extractor_for(model_id: str) -> Extractor:
    """The extractor that makes vectors with this model id (the serving index's model)."""
    configured = current_extractor()
    if configured.model_id == model_id:
        return configured
    # The index may still be on the previous model while a reindex to the new one runs.
    name = model_id.split("@", 1)[0]
    try:
        extractor = load_extractor(
            name,
            device=settings.LOOKALIKE_DEVICE,
            precision=settings.LOOKALIKE_PRECISION,
            download=settings.LOOKALIKE_WEIGHTS_DOWNLOAD,
        )
    except Exception as exc:  # unknown name, weights missing: the operator must reindex
        raise ModelUnavailable(
            f"The index was built with {model_id}, which this process cannot load ({exc}); "
            "run `python manage.py reindex` to rebuild it with the configured backbone."
        ) from exc
    if extractor.model_id != model_id:
        raise ModelUnavailable(
            f"The index was built with {model_id}, but these weights give {extractor.model_id}; "
            "run `python manage.py reindex`."
        )
    return extractor
