"""Product photos: checked, re-encoded and stored once per content hash."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from embeddings.images import ACCEPTED_HINT, ImageRejected, human_size, open_image
from embeddings.preprocess import to_rgb

MAX_SIDE = 1200
THUMB_SIDE = 400


@dataclass(frozen=True)
class StoredImage:
    path: str
    thumbnail: str
    sha256: str
    width: int
    height: int


def decode_upload(data: bytes, draft_side: int | None = None) -> Image.Image:
    """Decode untrusted bytes with the site's limits; raises ImageRejected.

    ``draft_side`` lets a JPEG decode scaled down (search photos only, never stored ones).
    """
    return open_image(
        data,
        max_bytes=settings.LOOKALIKE_MAX_UPLOAD_BYTES,
        max_pixels=settings.LOOKALIKE_MAX_PIXELS,
        draft_side=draft_side,
    )


def decode_uploaded_file(upload: UploadedFile, draft_side: int | None = None) -> Image.Image:
    """Check an uploaded file's size before reading it, then decode it safely."""
    limit = settings.LOOKALIKE_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise ImageRejected(
            f"The file is {human_size(upload.size)}; the limit is {human_size(limit)}. "
            f"{ACCEPTED_HINT} under that size."
        )
    return decode_upload(upload.read(), draft_side)


def store_image(image: Image.Image) -> StoredImage:
    """Re-encode a decoded photo as JPEG (upright, no metadata) and store it by hash."""
    upright = to_rgb(image)
    fitted = _fit(upright, MAX_SIDE)
    # Baseline, not progressive: nvJPEG decodes baseline JPEGs on the GPU, progressive ones
    # mostly on the CPU (H100: 21,000 against 640 img/s for the demo photos, for 0.3 % more
    # bytes; scripts/bench_embedding_gpu.py). The thumbnail, which pages show, stays
    # progressive.
    main = _jpeg(fitted, quality=88, progressive=False)
    sha256 = hashlib.sha256(main).hexdigest()
    path = f"products/{sha256[:2]}/{sha256}.jpg"
    thumbnail = f"products/{sha256[:2]}/{sha256}-thumb.jpg"
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(main))
    if not default_storage.exists(thumbnail):
        default_storage.save(thumbnail, ContentFile(_jpeg(_fit(upright, THUMB_SIDE), quality=82)))
    width, height = fitted.size
    return StoredImage(path, thumbnail, sha256, width, height)


# Segments of word characters and inner dots: no quoting, no "." or ".." for urljoin to resolve.
_PLAIN_NAME = re.compile(r"[\w-]+(\.[\w-]+)*(/[\w-]+(\.[\w-]+)*)*", re.ASCII)


def stored_url(name: str) -> str:
    """default_storage.url(name), without its parsing for a plain name on the file system.

    A similar-items list shows two photos per product, and FileSystemStorage.url (quote, then
    urljoin) took a twentieth of the call; for a plain name under a plain base URL it is the
    base URL followed by the name.
    """
    prefix = stored_url_prefix()
    if prefix is not None and plain_name(name):
        return prefix + name
    return default_storage.url(name)


def stored_url_prefix() -> str | None:
    """What stored_url puts before a plain name, or None when the storage makes every URL."""
    storage = default_storage._wrapped
    if type(storage) is FileSystemStorage and _joins_plainly(storage.base_url):
        return storage.base_url
    return None


def plain_name(name: str) -> bool:
    """Whether stored_url joins this name to its prefix as it is."""
    return _PLAIN_NAME.fullmatch(name) is not None


@lru_cache(maxsize=8)
def _joins_plainly(base_url: str | None) -> bool:
    # A base such as /media/ or https://cdn.example.com/media/ (no dot segments, query).
    return bool(base_url) and urljoin(base_url, "x.jpg") == base_url + "x.jpg"


def open_stored(path: str) -> Image.Image:
    """Open a stored product photo."""
    image = Image.open(io.BytesIO(read_stored(path)))
    image.load()
    return image


def read_stored(path: str) -> bytes:
    """The bytes of a stored product photo."""
    with default_storage.open(path, "rb") as handle:
        return handle.read()


def _fit(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    fitted = image.copy()
    fitted.thumbnail((side, side), Image.Resampling.LANCZOS)
    return fitted


def _jpeg(image: Image.Image, quality: int, progressive: bool = True) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=progressive)
    return buffer.getvalue()
