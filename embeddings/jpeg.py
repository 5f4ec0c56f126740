"""JPEG bytes straight to a model batch on the device: nvJPEG on a GPU, libjpeg on the CPU.

The GPU branch of catalog embedding. Stored product photos are upright RGB JPEGs re-encoded
without EXIF (``shop.images.store_image``), so no orientation step is needed; uploads keep
going through PIL. The same code runs on the CPU, which is how the tests check it against the
PIL path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from embeddings.extractor import Extractor
from embeddings.registry import Backbone

WHITE = 255


def jpeg_batch(
    datas: Sequence[bytes], backbone: Backbone, crop: str, device: torch.device
) -> torch.Tensor:
    """Decode JPEGs on ``device`` (in one call: nvJPEG batches them) into a normalised batch."""
    raw = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
    images = decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)
    transform = backbone.tensor_transforms(crop)
    prepare = _letterbox if crop == "letterbox" else (lambda image: image)
    return torch.stack([transform(prepare(image)) for image in images])


def _letterbox(image: torch.Tensor) -> torch.Tensor:
    """Pad a CHW uint8 image to a centred square on white, like ``preprocess.letterbox``."""
    _, height, width = image.shape
    side = max(height, width)
    left, top = (side - width) // 2, (side - height) // 2
    return F.pad(image, (left, side - width - left, top, side - height - top), value=WHITE)


def embed_jpegs(
    extractor: Extractor, datas: Sequence[bytes], crop: str = "centre", batch_size: int = 256
) -> np.ndarray:
    """Pooled unit vectors of JPEG photos, decoded on the extractor's device."""
    out = []
    for start in range(0, len(datas), batch_size):
        chunk = datas[start : start + batch_size]
        batch = jpeg_batch(chunk, extractor.backbone, crop, extractor.device)
        with torch.inference_mode(), extractor._autocast():
            features = extractor.model(extractor.to_device(batch))
        out.append(F.normalize(features.float(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, extractor.dim), np.float32)
