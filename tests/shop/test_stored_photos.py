"""How a product photo is stored: the main JPEG in baseline (GPU-decodable), the thumbnail
progressive (pages show it while it loads)."""

from __future__ import annotations

import io

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from shop.images import decode_upload, store_image


def photo() -> Image.Image:
    """A 640 x 480 photo with detail: gradients, a dark block, noise."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.stack([x * 255 // 640, y * 255 // 480, (x + y) % 256], axis=-1).astype(np.int32)
    pixels[120:360, 200:440] //= 4
    pixels += rng.integers(-12, 13, size=pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name) as handle:
        return handle.read()


def test_the_main_photo_is_baseline_and_the_thumbnail_progressive() -> None:
    # given a photo uploaded as a progressive JPEG
    buffer = io.BytesIO()
    photo().save(buffer, "JPEG", quality=90, progressive=True)
    # when the shop stores it
    stored = store_image(decode_upload(buffer.getvalue()))
    main, thumbnail = stored_bytes(stored.path), stored_bytes(stored.thumbnail)
    # then the main photo (what catalog embedding decodes) is baseline, the thumbnail not
    assert not Image.open(io.BytesIO(main)).info.get("progressive")
    assert Image.open(io.BytesIO(thumbnail)).info.get("progressive")
    # and torchvision's decoder (nvJPEG on a GPU) reads it as PIL does, to a level or two
    pixels = decode_jpeg(torch.frombuffer(bytearray(main), dtype=torch.uint8), ImageReadMode.RGB)
    reference = np.asarray(Image.open(io.BytesIO(main)).convert("RGB")).transpose(2, 0, 1)
    assert pixels.shape == reference.shape
    assert np.abs(pixels.numpy().astype(int) - reference).mean() < 1.0
