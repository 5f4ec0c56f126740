"""Product-photo preprocessing: orientation, transparency, letterboxing."""

from __future__ import annotations

from PIL import Image, ImageOps

WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and flatten any transparency onto white."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def letterbox(image: Image.Image, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """Pad to a square, centred, so no toe or heel is cropped away."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new("RGB", (side, side), fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def prepare(image: Image.Image) -> Image.Image:
    """The product pipeline before the backbone's own resize and normalisation."""
    return letterbox(to_rgb(image))
