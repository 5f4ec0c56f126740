"""Synthetic degradations of good product photos, each at a mild and a strong level.

The original is better than its mild copy, which is better than its strong copy (RankIQA's
synthetic rankings). Each degradation is something a merchant's photo really suffers from.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

LEVELS = ("mild", "strong")


def blur(image: Image.Image, level: int) -> Image.Image:
    """Out of focus."""
    return image.filter(ImageFilter.GaussianBlur(radius=(1.5, 4.0)[level]))


def noise(image: Image.Image, level: int) -> Image.Image:
    """Sensor noise of a dim room."""
    a = np.asarray(image, dtype=np.float32)
    rng = np.random.default_rng(a.shape[0] * 31 + level)
    a = a + rng.normal(0, (12.0, 30.0)[level], a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, level: int) -> Image.Image:
    """Blocking and ringing of heavy compression."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=(15, 5)[level])
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def dark(image: Image.Image, level: int) -> Image.Image:
    """Under-exposed."""
    return ImageEnhance.Brightness(image).enhance((0.55, 0.25)[level])


def bright(image: Image.Image, level: int) -> Image.Image:
    """Over-exposed, highlights burnt out."""
    return ImageEnhance.Brightness(image).enhance((1.5, 2.2)[level])


def colour_cast(image: Image.Image, level: int) -> Image.Image:
    """A colour cast from mixed light (white balance off)."""
    a = np.asarray(image, dtype=np.float32)
    gain = np.array([(1.15, 1.0, 0.8), (1.35, 1.0, 0.6)][level], dtype=np.float32)
    return Image.fromarray(np.clip(a * gain, 0, 255).astype(np.uint8))


def low_resolution(image: Image.Image, level: int) -> Image.Image:
    """Shot or saved too small and blown up again."""
    factor = (3, 6)[level]
    width, height = image.size
    small = image.resize((max(1, width // factor), max(1, height // factor)), Image.BILINEAR)
    return small.resize((width, height), Image.NEAREST)


def off_centre(image: Image.Image, level: int) -> Image.Image:
    """The product pushed to a corner and cut off by the frame."""
    width, height = image.size
    shift = (0.25, 0.45)[level]
    dx, dy = int(width * shift), int(height * shift * 0.6)
    return image.crop((dx, dy, width, height)).resize((width, height), Image.BICUBIC)


def cluttered(image: Image.Image, level: int) -> Image.Image:
    """A busy background: random coloured shapes around the product."""
    rng = random.Random(image.size[0] * 7 + level)
    out = image.copy()
    width, height = out.size
    for _ in range((12, 40)[level]):
        w, h = rng.randint(width // 12, width // 4), rng.randint(height // 12, height // 4)
        x = rng.choice([rng.randint(0, width // 5), rng.randint(width * 3 // 4, width - 1)])
        y = rng.randint(0, height - 1)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        out.paste(Image.new("RGB", (w, h), colour), (x, y))
    return out.filter(ImageFilter.SMOOTH) if level else out


DEGRADATIONS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "dark": dark,
    "bright": bright,
    "colour_cast": colour_cast,
    "low_resolution": low_resolution,
    "off_centre": off_centre,
    "cluttered": cluttered,
}


def degrade(image: Image.Image, kind: str, level: int) -> Image.Image:
    """One degraded copy of an RGB photo: level 0 is mild, 1 is strong."""
    return DEGRADATIONS[kind](image.convert("RGB"), level)
