"""Synthetic shopper photos: hard but deterministic for a seed."""

from __future__ import annotations

import numpy as np
from PIL import Image

from embeddings.shopper import shopper_photos


def product_photos() -> list[Image.Image]:
    gradient = np.linspace(0, 255, 120 * 90, dtype=np.uint8).reshape(90, 120)
    return [
        Image.fromarray(
            np.stack([gradient, gradient.T[:90, :90].repeat(2, 1)[:, :120], gradient], 2)
        ),
        Image.new("RGB", (60, 100), (20, 120, 200)),
    ]


def test_a_seed_always_gives_the_same_photos() -> None:
    first = shopper_photos(product_photos(), seed=3)
    again = shopper_photos(product_photos(), seed=3)
    for a, b in zip(first, again, strict=True):
        assert a.size == b.size
        assert a.tobytes() == b.tobytes()


def test_another_seed_gives_other_photos() -> None:
    a = shopper_photos(product_photos(), seed=1)[0]
    b = shopper_photos(product_photos(), seed=2)[0]
    assert a.size != b.size or a.tobytes() != b.tobytes()


def test_the_product_sits_on_a_larger_textured_photo() -> None:
    photo = shopper_photos([Image.new("RGB", (60, 100), (20, 120, 200))], seed=0)[0]
    assert photo.mode == "RGB"
    assert max(photo.size) == 448
    pixels = np.asarray(photo, np.float32)
    # Not a flat colour anywhere near the original: background texture and JPEG noise.
    assert pixels.std(axis=(0, 1)).max() > 10
