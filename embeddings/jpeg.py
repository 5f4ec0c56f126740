"""JPEG bytes straight to a model batch on the device: nvJPEG on a GPU, libjpeg on the CPU.

The GPU path for raw pooled features (``scripts/bench_embedding_gpu.py`` measures it); the
default retrieval pipeline (tilted and mirrored views, colour, layout) does not use it yet.
Stored product photos are upright RGB JPEGs re-encoded without EXIF
(``shop.images.store_image``), so no orientation step is needed; uploads keep going through
PIL. The same code runs on the CPU, which is how the tests check it against the PIL path.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from embeddings.extractor import Extractor
from embeddings.registry import Backbone

WHITE = 255
# Batches decoded ahead of the one the model runs: decoding overlaps the forward pass.
PREFETCH = 2


def jpeg_batch(
    datas: Sequence[bytes], backbone: Backbone, crop: str, device: torch.device
) -> torch.Tensor:
    """Decode JPEGs on ``device`` (in one call: nvJPEG batches them) into a normalised batch.

    Photos of the same size are resized together (a catalog's photos come in a few sizes),
    and the scaling and normalisation run once over the whole batch: on a GPU, per-photo
    transforms cost more in Python than the kernels themselves (H100, 1200 px photos:
    decoding alone 7,600 img/s, with torchvision's per-photo transforms 4,400, resized by
    size 6,100 against 7,400 in a later run).
    """
    raw = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
    images = decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)
    size = backbone.input_size
    out = torch.empty((len(images), 3, size, size), dtype=torch.float32, device=device)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        groups[tuple(image.shape)].append(i)
    for indices in groups.values():
        stack = torch.stack([images[i] for i in indices])
        resized = _resized(stack, backbone, crop)
        if len(indices) == len(images):
            out.copy_(resized)
        else:
            out[torch.tensor(indices, device=device)] = resized
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1) * 255
    return out.sub_(mean).div_(std)


def _resized(stack: torch.Tensor, backbone: Backbone, crop: str) -> torch.Tensor:
    """(N, 3, H, W) uint8 photos of one size -> (N, 3, S, S) float in 0..255, as
    ``backbone.tensor_transforms(crop)`` resizes one photo (rounded to whole levels)."""
    size = backbone.input_size
    _, _, height, width = stack.shape
    if crop == "letterbox":
        stack = _letterbox(stack)
        target = (size, size)
    elif crop == "stretch":
        target = (size, size)
    elif crop == "centre":
        short, long = sorted((height, width))
        side = backbone.decode_side(crop)
        new_long = int(side * long / short)  # torchvision's rule for Resize(int)
        target = (side, new_long) if height <= width else (new_long, side)
    else:
        raise ValueError(f"Unknown crop {crop!r}; use letterbox, centre or stretch.")
    resized = F.interpolate(
        stack.float(), size=target, mode="bilinear", antialias=True, align_corners=False
    )
    resized = resized.round_().clamp_(0, 255)
    if crop != "centre":
        return resized
    top = int(round((target[0] - size) / 2.0))
    left = int(round((target[1] - size) / 2.0))
    return resized[:, :, top : top + size, left : left + size]


def _letterbox(image: torch.Tensor) -> torch.Tensor:
    """Pad (N)CHW uint8 photos to a centred square on white, like ``preprocess.letterbox``."""
    height, width = image.shape[-2:]
    side = max(height, width)
    left, top = (side - width) // 2, (side - height) // 2
    return F.pad(image, (left, side - width - left, top, side - height - top), value=WHITE)


def embed_jpegs(
    extractor: Extractor, datas: Sequence[bytes], crop: str = "centre", batch_size: int = 256
) -> np.ndarray:
    """Pooled unit vectors of JPEG photos, decoded on the extractor's device.

    A thread decodes the next batches while the model runs the current one (on CUDA, on a
    stream of its own). A photo that cannot be decoded raises torchvision's error.
    """
    out = []
    for batch in _batches(extractor, datas, crop, batch_size):
        with torch.inference_mode(), extractor._autocast():
            features = extractor.model(extractor.to_device(batch))
        out.append(F.normalize(features.float(), dim=1))
    if not out:
        return np.zeros((0, extractor.dim), np.float32)
    return torch.cat(out).cpu().numpy()


def _batches(
    extractor: Extractor, datas: Sequence[bytes], crop: str, batch_size: int
) -> Iterator[torch.Tensor]:
    """Model batches of the photos in order, made ahead by a thread (on CUDA, on a stream
    of its own, so decoding the next batch overlaps the forward pass of this one)."""
    chunks = [datas[i : i + batch_size] for i in range(0, len(datas), batch_size)]
    device = extractor.device
    make = lambda chunk: jpeg_batch(chunk, extractor.backbone, crop, device)  # noqa: E731
    if len(chunks) < 2:
        for chunk in chunks:
            yield make(chunk)
        return
    ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()
    cuda = device.type == "cuda"
    stream = torch.cuda.Stream(device) if cuda else None

    def hand(item: tuple) -> bool:
        """Queue an item for the consumer; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with torch.cuda.stream(stream) if cuda else nullcontext(), torch.inference_mode():
                for chunk in chunks:
                    batch, done = make(chunk), None
                    if cuda:
                        done = torch.cuda.Event()
                        done.record(stream)
                    if not hand((batch, done)):
                        return
        except BaseException as error:  # handed to the consumer, raised there
            hand((error, None))

    worker = threading.Thread(target=produce, name="jpeg-decode", daemon=True)
    worker.start()
    try:
        for _ in chunks:
            batch, done = ready.get()
            if isinstance(batch, BaseException):
                raise batch
            if done is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(done)
                batch.record_stream(current)  # its memory is not reused while the model reads
            yield batch
    finally:
        stop.set()
        worker.join()
