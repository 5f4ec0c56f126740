"""Safe decoding of untrusted image uploads."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

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
    draft_side: int | None = None,
) -> Image.Image:
    """Decode untrusted bytes into a fully loaded PIL image, or raise ImageRejected.

    With ``draft_side``, a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8) whose both
    sides stay at least ``draft_side`` pixels: for embedding, not for storing.
    """
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
    if draft_side:
        draft(image, draft_side)
    _decode(image)
    return image


def draft(image: Image.Image, side: int) -> Image.Image:
    """Let the JPEG decoder scale down by 2, 4 or 8 while both sides stay >= ``side``.

    The DCT-domain scaling skips most of the decoding work of a large photo; the backbone
    resizes to ~224 px anyway. Other formats are left as they are.
    """
    if image.format == "JPEG" and min(image.size) >= 2 * side:
        image.draft(image.mode, (side, side))
    return image


def decode_photo(data: bytes, draft_side: int | None = None) -> Image.Image:
    """Decode a stored (trusted, already checked) photo, optionally drafted; raises OSError."""
    image = Image.open(io.BytesIO(data))
    if draft_side:
        draft(image, draft_side)
    image.load()
    return image


def _load_and_decode(load: Callable[[], bytes], draft_side: int | None):
    try:
        return decode_photo(load(), draft_side)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return exc if isinstance(exc, OSError | ValueError) else OSError(str(exc))


def _decode_bytes(data: bytes, draft_side: int | None):
    return _load_and_decode(lambda: data, draft_side)


DECODE_WORKERS = min(4, os.cpu_count() or 1)


def decode_photos(
    sources: Sequence[Callable[[], bytes]] | Sequence[bytes],
    *,
    draft_side: int | None = None,
    workers: int = DECODE_WORKERS,
    processes: bool = False,
) -> list[Image.Image | Exception]:
    """Read and decode photos in parallel workers, in order; a failure is returned in place.

    ``sources`` are callables returning bytes (read inside the worker, so file I/O overlaps
    too) or bytes. Threads suit PIL, which releases the GIL while decoding; ``processes``
    (bytes only) is for comparison in the benchmark.
    """
    if processes:
        if any(callable(s) for s in sources):
            raise ValueError("Worker processes need bytes, not loader functions.")
        pool: Executor = ProcessPoolExecutor(workers)
        work = [pool.submit(_decode_bytes, data, draft_side) for data in sources]
    else:
        pool = ThreadPoolExecutor(workers)
        loaders = [s if callable(s) else (lambda d=s: d) for s in sources]
        work = [pool.submit(_load_and_decode, load, draft_side) for load in loaders]
    with pool:
        return [job.result() for job in work]


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
