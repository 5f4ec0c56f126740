"""Hostile and ordinary uploads through the safe decoder."""

from __future__ import annotations

import pytest
from PIL import Image

from embeddings.images import ImageRejected, open_image
from tests.imagefactory import PDF, SVG, TEXT, image_bytes, jpeg_bytes, png_bomb, truncated_jpeg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (TEXT, "not an image"),
        (SVG, "not an image"),
        (PDF, "not an image"),
        (truncated_jpeg(), "truncated"),
        (png_bomb(), "more pixels than we can decode safely"),
        (png_bomb(7000, 7000), "7000x7000 pixels; the limit is 40 megapixels"),
        (image_bytes(Image.new("RGB", (8, 8)), "BMP"), "BMP images are not supported"),
        (image_bytes(Image.new("RGB", (8, 8)), "TIFF"), "TIFF images are not supported"),
    ],
    ids=["empty", "text", "svg", "pdf", "truncated", "bomb", "over-limit", "bmp", "tiff"],
)
def test_it_rejects_files_that_are_not_usable_photos(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejected) as error:
        open_image(data)
    assert message in str(error.value)
    assert "JPEG" in str(error.value) or "Resize" in str(error.value)


def test_it_rejects_a_file_over_the_byte_limit() -> None:
    with pytest.raises(ImageRejected, match="limit is"):
        open_image(jpeg_bytes(), max_bytes=100)


def test_it_rejects_an_image_over_the_pixel_limit_before_decoding() -> None:
    with pytest.raises(ImageRejected, match="64x48 pixels"):
        open_image(jpeg_bytes((64, 48)), max_pixels=1000)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_it_accepts_the_usual_photo_formats(fmt: str) -> None:
    # given
    data = image_bytes(Image.new("RGB", (30, 20), (0, 128, 255)), fmt)
    # when
    image = open_image(data)
    # then
    assert image.size == (30, 20)
    assert image.format == fmt


@pytest.mark.parametrize(
    ("size", "text"), [(1000, "1 KB"), (850_000, "850 KB"), (10_485_760, "10.5 MB"), (2e7, "20 MB")]
)
def test_sizes_are_written_for_people(size: int, text: str) -> None:
    from embeddings.images import human_size

    assert human_size(int(size)) == text


def test_a_large_jpeg_is_drafted_to_no_less_than_the_side_asked_for() -> None:
    # given a 2000x1500 JPEG and the same photo as PNG
    photo = Image.effect_noise((2000, 1500), 40).convert("RGB")
    # when
    drafted = open_image(image_bytes(photo, "JPEG"), draft_side=300)
    full = open_image(image_bytes(photo, "JPEG"))
    png = open_image(image_bytes(photo, "PNG"), draft_side=300)
    # then the decoder scaled the JPEG by 4 (by 8 would leave 187 px), and left the PNG alone
    assert drafted.size == (500, 375)
    assert full.size == png.size == (2000, 1500)


def test_a_jpeg_already_small_enough_is_decoded_in_full() -> None:
    assert open_image(jpeg_bytes((500, 400)), draft_side=256).size == (500, 400)
