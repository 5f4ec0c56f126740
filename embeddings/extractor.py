"""Batched, device-aware feature extraction: PIL images in, L2-normalised vectors out."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from embeddings.registry import Backbone, get_backbone

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_BATCH_SIZE = 32


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(device: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for a precision setting; None means plain fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        # fp16: as fast as bf16 on an H100 and much closer to fp32 (EfficientNet-Lite0 pooled
        # features min cosine 0.99995 against 0.98581; resnet50 compiled 24,600 img/s against
        # 22,436: docs/benchmarks/embedding_gpu*.json). An overflow (past 65,504) is caught:
        # such rows are computed again in fp32 (``finite_rows``).
        return torch.float16
    # Without native bf16, autocast on CPU emulates it and runs slower than fp32.
    return torch.bfloat16 if cpu_supports_bf16() else None


@dataclass
class Extractor:
    """A loaded backbone on a device; embeds batches of PIL images."""

    backbone: Backbone
    model: nn.Module
    device: torch.device
    dtype: torch.dtype | None
    weights_id: str
    preprocess_workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))

    @property
    def model_id(self) -> str:
        """Identifies the vectors this extractor makes: backbone and weights."""
        return f"{self.backbone.name}@{self.weights_id}"

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self.backbone.dim

    def embed_query(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Shopper photos are embedded like product photos by a plain backbone."""
        return self.embed(images)

    @property
    def precision(self) -> str:
        """Human name of the arithmetic used."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def embed(
        self,
        images: Sequence[Image.Image],
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed images into an (N, dim) float32 array of unit vectors."""
        if not images:
            return np.zeros((0, self.backbone.dim), dtype=np.float32)
        out = []
        for batch in self._batches(images, batch_size):
            out.append(self._forward(batch))
            if progress:
                progress(batch.shape[0])
        return finite_rows(
            np.concatenate(out),
            self.precision,
            lambda rows: self.full_precision().embed([images[i] for i in rows], batch_size),
        )

    def full_precision(self) -> Extractor:
        """The same model (the same weights in memory) run in plain fp32, without autocast."""
        return replace(self, dtype=None)

    def _batches(self, images: Sequence[Image.Image], batch_size: int) -> Iterator[torch.Tensor]:
        transform = self.backbone.transforms()
        # PIL releases the GIL while resizing, so threads overlap preprocessing.
        with ThreadPoolExecutor(self.preprocess_workers) as pool:
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                yield torch.stack(list(pool.map(transform, chunk)))

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), self._autocast():
            features = self.model(self.to_device(batch))
        return F.normalize(features.float(), dim=1).cpu().numpy()

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """A CPU batch on the model's device, in the memory layout the model runs fastest in."""
        if self.device.type == "cuda" and batch.device.type == "cpu":
            # A pinned (page-locked) host buffer lets the copy run asynchronously.
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def finite_rows(
    vectors: np.ndarray, precision: str, again: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """The vectors, with rows that came out inf or NaN in reduced precision computed again in
    fp32 by ``again(row indices)``: fp16 overflows past 65,504 where fp32 does not, and a
    non-finite vector would poison every search it takes part in."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad) and precision != "fp32":
        logger.warning(
            "%d of %d vectors overflowed in %s; computed again in fp32",
            len(bad),
            len(vectors),
            precision,
        )
        vectors[bad] = again(bad)
    return vectors


_cache: dict[tuple, Extractor] = {}
_cache_lock = threading.Lock()


def load_extractor(
    name: str,
    *,
    weights_file: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    download: bool = True,
    compile: bool = False,
) -> Extractor:
    """The process-wide extractor for these settings; the model is loaded once."""
    key = (name, weights_file, device, precision, compile)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _build_extractor(name, weights_file, device, precision, download, compile)
        return _cache[key]


def _build_extractor(
    name: str,
    weights_file: str | None,
    device: str,
    precision: str,
    download: bool,
    compile: bool = False,
    fold: bool = True,
) -> Extractor:
    backbone = get_backbone(name)
    model, weights_id = backbone.load(weights_file, download, fold=fold)
    target = pick_device(device)
    dtype = pick_dtype(target, precision)
    # channels_last lets oneDNN / cuDNN pick their fastest convolution kernels, in fp32 too:
    # on 2 AVX2 cores (no AVX-512), fp32 ResNet-50 ran 12.5 img/s at batch 32 against 8.7
    # in NCHW, EfficientNet-Lite0 37.8 against 23.5 (scripts/bench_embedding.py).
    model = model.to(memory_format=torch.channels_last)
    model = model.to(target)
    if compile:
        model = compiled(model, target)
    extractor = Extractor(backbone, model, target, dtype, weights_id)
    how = "compiled" if compile else "eager"
    logger.info("Loaded %s on %s (%s, %s)", extractor.model_id, target, extractor.precision, how)
    return extractor


def compiled(model: nn.Module, device: torch.device) -> nn.Module:
    """The model's forward and feature maps through torch.compile (inductor, default mode).

    On a CPU, inductor freezes the weights: constants folded, oneDNN convolutions with their
    activations fused and weights pre-packed for bf16 (ResNet-50 bf16 on 2 AMX cores: 163
    against 62 img/s model only at batch 32; docs/benchmarks.md). Shapes are static on the
    first call and the batch dimension turns dynamic at the second batch size (torch's
    automatic dynamic shapes), so a worker compiles each function twice, and once more for a
    batch of one, rather than once per batch size until torch's recompile limit sends it back
    to eager. Compiling takes 5-60 s on a CPU, so LOOKALIKE_COMPILE decides where
    (``recommender.embedding.compile_backbone``). A compile that fails (no C compiler on
    the host, say) logs a warning and leaves the model eager rather than failing the embedding.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    if device.type == "cpu":
        import torch._inductor.config as inductor

        inductor.freezing = True  # inference only: the weights never change after loading
    model.forward = torch.compile(model.forward)
    model.feature_maps = torch.compile(model.feature_maps)
    return model


def embed_images(
    images: Sequence[Image.Image],
    backbone: str = "efficientnet_lite0",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    **options,
) -> np.ndarray:
    """Embed a list of PIL images with a registered backbone: float32 (N, D), unit norm."""
    return load_extractor(backbone, **options).embed(images, batch_size=batch_size)
