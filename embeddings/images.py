"""Safe decoding of untrusted image uploads."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF"}
ACCEPTED_HINT = "Upload a JPEG, PNG, WebP or GIF photo"
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_PIXELS = 40_000_000
TOO_LARGE_HINT = "Resize it to a few megapixels and upload again."


def human_size(size: int) -> str:
    """Bytes as a person reads them: 850 KB, 12.5 MB."""
    if size < 1_000_000:
        return f"{max(size, 1) / 1000:.0f} KB"
    return f"{size / 1e6:.1f} MB".replace(".0 MB", " MB")


class ImageRejected(ValueError):
    """An uploaded file that cannot be used as a product or query photo."""


def open_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode untrusted bytes into a fully loaded PIL image, or raise ImageRejected."""
    if not data:
        raise ImageRejected(f"The file is empty. {ACCEPTED_HINT}.")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"The file is {human_size(len(data))}; the limit is {human_size(max_bytes)}. "
            f"{ACCEPTED_HINT} under that size."
        )
    image = _identify(data)
    width, height = image.size
    # Check the header's size before decoding: a decompression bomb is small on disk
    # and only explodes when its pixels are allocated.
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} "
            f"megapixels. Resize it and upload again."
        )
    _decode(image)
    return image


def _identify(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRejected(
            f"The image claims more pixels than we can decode safely. {TOO_LARGE_HINT}"
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(f"This file is not an image we can read. {ACCEPTED_HINT}.") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected(f"This image could not be read ({exc}). {ACCEPTED_HINT}.") from None
    if image.format not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{image.format} images are not supported. {ACCEPTED_HINT}.")
    return image


def _decode(image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRejected(
            f"The image has more pixels than we can decode safely. {TOO_LARGE_HINT}"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected(
            f"The image is truncated or damaged. {ACCEPTED_HINT} that opens on your computer."
        ) from None
