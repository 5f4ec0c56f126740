"""The process's embedding model, chosen from settings once and loaded once."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from embeddings import Extractor, load_extractor, resolve_backbone_name
from embeddings.pipeline import (
    Pipeline,
    PipelineConfig,
    decode_side,
    load_pipeline,
    parse_backbones,
)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_choice: BackboneChoice | None = None
# True in Celery worker processes (config.celery), which embed catalogs in bulk.
_bulk_process = False


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


def current_extractor() -> Pipeline:
    """The configured retrieval pipeline (backbones + settings): what embeds photos now."""
    return current_pipeline()


def pipeline_config() -> PipelineConfig:
    """The retrieval pipeline configured by the LOOKALIKE_* settings."""
    backbones = ((backbone_choice().name, 1.0), *parse_backbones(settings.LOOKALIKE_ENSEMBLE))
    return PipelineConfig(
        backbones=backbones,
        crop=settings.LOOKALIKE_CROP,
        pooling=settings.LOOKALIKE_POOLING,
        mirror=settings.LOOKALIKE_MIRROR,
        colour_weight=settings.LOOKALIKE_COLOUR_WEIGHT,
        layout_weight=settings.LOOKALIKE_LAYOUT_WEIGHT,
        whiten_dims=settings.LOOKALIKE_WHITEN_DIMS,
        head_weight=settings.LOOKALIKE_HEAD_WEIGHT,
        query_head_weight=settings.LOOKALIKE_QUERY_HEAD_WEIGHT,
        suppress_background=settings.LOOKALIKE_SUPPRESS_BACKGROUND,
        catalog_rotation=settings.LOOKALIKE_CATALOG_ROTATION,
    )


def mark_bulk_process() -> None:
    """This process embeds catalogs in bulk (a Celery worker): LOOKALIKE_COMPILE=auto may
    compile the backbone here."""
    global _bulk_process
    _bulk_process = True


def compile_backbone() -> bool:
    """Whether this process runs the backbone through torch.compile (LOOKALIKE_COMPILE).

    "auto" compiles in a bulk process (a Celery worker), on a GPU or a CPU, where the numbers
    favour it: on an H100, resnet50 in bf16 ran 22,400 img/s compiled against 11,400 eager
    (docs/benchmarks/embedding_gpu.md); on CPUs the compiled pipeline beat the eager one on
    every machine measured, from +18 % in fp32 on AVX2 to 2x in bf16 on AMX
    (docs/benchmarks/embedding.md; resnet50 96.0 against 56.3 img/s on the AMX Xeon of
    2026-12-03's fifth session, where the default catalog path on EfficientNet-Lite0, its
    activations clamped as integers in eager mode too, ran level: 44.8 against 45.1). A
    worker compiles at its first batch (5-60 s on a CPU) and once more at its second batch
    size, whose graph has a dynamic batch dimension and serves every later size
    (``embeddings.extractor.compiled``). Not in a web process, whose shoppers must not wait
    for a compile.
    """
    setting = settings.LOOKALIKE_COMPILE
    if setting != "auto":
        return bool(setting)
    return _bulk_process


def current_pipeline() -> Pipeline:
    """The configured pipeline: its model id keys stored vectors and the index."""
    choice = backbone_choice()
    return load_pipeline(
        pipeline_config(),
        weights_file=choice.weights_file,
        device=settings.LOOKALIKE_DEVICE,
        precision=settings.LOOKALIKE_PRECISION,
        download=settings.LOOKALIKE_WEIGHTS_DOWNLOAD,
        compile=compile_backbone(),
    )


def catalog_decode_side(extractor: Extractor | Pipeline) -> int | None:
    """How far a stored JPEG may be drafted for this extractor (None: decode in full)."""
    if not settings.LOOKALIKE_DRAFT:
        return None
    if isinstance(extractor, Pipeline):
        return decode_side(extractor.config)
    return extractor.backbone.decode_side()


def query_decode_side() -> int | None:
    """How far an uploaded search photo may be drafted (None: decode in full)."""
    if not settings.LOOKALIKE_QUERY_DRAFT:
        return None
    return decode_side(pipeline_config(), query=True)


def warm_start() -> None:
    """Load the model and run one photo through the query path, so no shopper waits for it."""
    from PIL import Image

    try:
        pipeline = current_pipeline()
        photo = Image.new("RGB", (640, 480), (200, 200, 200))
        photo.paste((40, 40, 40), (200, 120, 440, 360))
        pipeline.embed_query([photo])
    except Exception:  # a web process must start even when the model cannot load
        logger.exception("Warm start failed; the first search will load the model")


def reset_backbone_choice() -> None:
    """Forget the choice (tests and settings changes)."""
    global _choice
    with _lock:
        _choice = None
        _found.clear()


class ModelUnavailable(Exception):
    """The index was built with a model this process cannot load."""


# Extractors found by model id, kept until a setting changes or the backbone choice is reset:
# every similar-items call asks for the serving index's one, and working it out from the
# settings again cost a hundredth of the call.
_found: dict[str, Extractor | Pipeline] = {}


def extractor_for(model_id: str) -> Extractor | Pipeline:
    """The extractor that makes vectors with this model id (the serving index's model)."""
    extractor = _found.get(model_id)
    if extractor is None:
        extractor = _found[model_id] = _extractor_for(model_id)
    return extractor


@receiver(setting_changed)
def _forget_found(**kwargs) -> None:
    _found.clear()


def _extractor_for(model_id: str) -> Extractor | Pipeline:
    configured = current_extractor()
    if configured.model_id == model_id:
        return configured
    # The index may still be on a previous backbone while a reindex runs: the same pipeline
    # settings (the part after "/") on that backbone; ids without "/" are plain backbones.
    backbone_id, _, key = model_id.partition("/")
    config = pipeline_config()
    earlier = replace(config, tilt_oversample=0)
    if key and key != config.key() and key == earlier.key():
        # Built before the tilted views were drawn at the backbone's size (2026-12-03): that
        # drawing is kept, so the index serves, and takes new products, until reindexed.
        config = earlier
    if key and (key != config.key() or backbone_id.startswith("ensemble")):
        raise ModelUnavailable(
            f"The index was built with {model_id}, another retrieval configuration than the "
            f"configured {configured.model_id}; run `python manage.py reindex`."
        )
    name = backbone_id.split("@", 1)[0]
    options = {
        "device": settings.LOOKALIKE_DEVICE,
        "precision": settings.LOOKALIKE_PRECISION,
        "download": settings.LOOKALIKE_WEIGHTS_DOWNLOAD,
        "compile": compile_backbone(),
    }
    try:
        if key:
            extractor = load_pipeline(replace(config, backbones=((name, 1.0),)), **options)
        else:
            extractor = load_extractor(name, **options)
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
