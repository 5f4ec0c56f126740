"""Small images made by the tests themselves, good and hostile."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def jpeg_bytes(size=(64, 48), colour=(200, 30, 30), quality: int = 90) -> bytes:
    """A plain JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def image_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    """Encode a PIL image."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG cut off halfway through its scan data."""
    data = image_bytes(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10"/></svg>'
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TEXT = b"this is not an image\n"


def hostile_uploads() -> list:
    """(bytes, file name, words the error must contain) for uploads that must get a 400."""
    import pytest

    cases = [
        ("empty", b"", "empty.jpg", "empty"),
        ("text", TEXT, "notes.txt", "not an image"),
        ("truncated", truncated_jpeg(), "cut.jpg", "truncated"),
        ("bomb", png_bomb(), "bomb.png", "more pixels"),
        ("over-pixels", png_bomb(7000, 7000), "big.png", "megapixels"),
        ("svg", SVG, "vector.svg", "not an image"),
        ("pdf", PDF, "doc.pdf", "not an image"),
        ("tiff", image_bytes(Image.new("RGB", (9, 9)), "TIFF"), "scan.tiff", "not supported"),
    ]
    return [pytest.param(data, name, message, id=case) for case, data, name, message in cases]
