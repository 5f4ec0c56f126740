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


Box = tuple[float, float, float, float]
MIN_BOX_SIDE = 0.05


def parse_box(text: str) -> Box:
    """'left,top,right,bottom' as shares (0..1) of the photo's width and height, checked."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("The crop box needs four numbers: left,top,right,bottom (0 to 1).")
    try:
        left, top, right, bottom = (float(p) for p in parts)
    except ValueError:
        raise ValueError("The crop box must be four numbers between 0 and 1.") from None
    if not all(0.0 <= v <= 1.0 for v in (left, top, right, bottom)):
        raise ValueError("Each crop box edge must be between 0 and 1 (a share of the photo).")
    if right - left < MIN_BOX_SIDE or bottom - top < MIN_BOX_SIDE:
        raise ValueError(
            "The crop box is empty or too small: right must exceed left and bottom must exceed "
            f"top by at least {MIN_BOX_SIDE:g}."
        )
    return left, top, right, bottom


def crop_box(image: Image.Image, box: Box) -> Image.Image:
    """Cut an upright photo to a box of shares (left, top, right, bottom)."""
    image = to_rgb(image)
    width, height = image.size
    left, top, right, bottom = box
    pixels = (left * width, top * height, right * width, bottom * height)
    return image.crop(tuple(round(v) for v in pixels))
