"""Synthetic shopper photos: a product photo as a shopper's phone might see it.

Each photo is cropped and zoomed, maybe mirrored, rotated, set on a textured background
(floor, table, carpet), lit differently and saved as a strong JPEG. Everything random is
drawn from a generator seeded by (seed, position), so a seed always gives the same photos.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from embeddings.preprocess import to_rgb

CANVAS_LONG_SIDE = 448


def shopper_photo(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One synthetic shopper photo of a product photo."""
    product = _crop_and_zoom(to_rgb(image), rng)
    # Never larger than the photo it goes into; rotating a small image is also quicker.
    product.thumbnail((CANVAS_LONG_SIDE, CANVAS_LONG_SIDE), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        product = product.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    product = product.convert("RGBA").rotate(
        float(rng.uniform(-12, 12)), resample=Image.Resampling.BICUBIC, expand=True
    )
    photo = _on_background(product, rng)
    photo = _relight(photo, rng)
    return _jpeg(photo, int(rng.integers(15, 30)))


def shopper_photos(images: list[Image.Image], seed: int = 0) -> list[Image.Image]:
    """A shopper photo of every image, deterministic for a seed."""
    return [
        shopper_photo(image, np.random.default_rng([seed, i])) for i, image in enumerate(images)
    ]


def _crop_and_zoom(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    # The shopper frames the product loosely: 85-100 % of each side stays in view.
    width, height = image.size
    keep_w, keep_h = rng.uniform(0.85, 1.0, size=2)
    left = rng.uniform(0, 1 - keep_w) * width
    top = rng.uniform(0, 1 - keep_h) * height
    return image.crop((int(left), int(top), int(left + keep_w * width), int(top + keep_h * height)))


def _on_background(product: Image.Image, rng: np.random.Generator) -> Image.Image:
    aspect = float(rng.choice([0.75, 1.0, 4 / 3]))
    width = CANVAS_LONG_SIDE if aspect >= 1 else int(CANVAS_LONG_SIDE * aspect)
    height = int(width / aspect)
    canvas = texture(width, height, rng)
    # The product fills 55-85 % of the photo's shorter side; the rest is floor or table.
    scale = rng.uniform(0.55, 0.85) * min(width, height) / max(product.size)
    size = (max(1, int(product.width * scale)), max(1, int(product.height * scale)))
    product = product.resize(size, Image.Resampling.BILINEAR)
    x = int(rng.uniform(0, width - size[0]))
    y = int(rng.uniform(0, height - size[1]))
    canvas.paste(product, (x, y), product)
    return canvas


def texture(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A random floor-like texture: wood grain, tiles or carpet noise, in a random colour."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # wood grain: wavy stripes
        freq, wobble = rng.uniform(0.05, 0.2), rng.uniform(5, 20)
        pattern = np.sin(freq * (yy + wobble * np.sin(xx * rng.uniform(0.01, 0.05))))
    elif kind == 1:  # tiles with grout lines
        tile = int(rng.integers(24, 80))
        pattern = np.where((xx % tile < 3) | (yy % tile < 3), -1.0, 0.6)
    else:  # carpet: blurred noise
        noise = Image.fromarray((rng.random((height, width)) * 255).astype(np.uint8))
        pattern = np.asarray(noise.filter(ImageFilter.GaussianBlur(2)), np.float32) / 64 - 2
    base = rng.uniform(40, 220, size=3)
    contrast = rng.uniform(15, 45)
    grain = rng.normal(0, 8, size=(height, width, 1))
    pixels = base + contrast * pattern[..., None] + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _relight(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.6, 1.4))
    photo = ImageEnhance.Contrast(photo).enhance(rng.uniform(0.6, 1.3))
    # A warm or cold cast, as under tungsten light or in shade.
    cast = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)], np.float32)
    pixels = np.asarray(photo, np.float32) * cast
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _jpeg(photo: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    out = Image.open(buffer)
    out.load()
    return out
