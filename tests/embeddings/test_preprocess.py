"""Product-photo preprocessing keeps the whole product, upright, on white."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from embeddings.preprocess import letterbox, prepare, shrink, to_rgb
from embeddings.registry import get_backbone


def test_letterbox_pads_to_a_square_without_cropping() -> None:
    # given a wide red photo
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    # when
    square = letterbox(image)
    # then the photo is whole, centred, with white bands above and below
    assert square.size == (200, 200)
    assert square.getpixel((100, 100)) == (255, 0, 0)
    assert square.getpixel((100, 10)) == (255, 255, 255)
    assert square.getpixel((100, 190)) == (255, 255, 255)
    assert square.getpixel((0, 51)) == (255, 0, 0)


def test_transparency_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.putpixel((5, 5), (0, 0, 255, 255))
    flat = to_rgb(image)
    assert flat.mode == "RGB"
    assert flat.getpixel((0, 0)) == (255, 255, 255)
    assert flat.getpixel((5, 5)) == (0, 0, 255)


def test_exif_orientation_is_applied() -> None:
    # given a landscape photo whose EXIF says "rotate 90 degrees" (orientation 6)
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.info["exif"] = exif.tobytes()
    image.getexif()[0x0112] = 6
    # when
    upright = to_rgb(image)
    # then it is shown as portrait
    assert upright.size == (20, 40)


def test_an_upright_rgb_photo_is_used_as_it_is_not_copied() -> None:
    # given a JPEG as a worker decodes it
    buffer = io.BytesIO()
    Image.effect_noise((60, 40), 50).convert("RGB").save(buffer, format="JPEG")
    photo = Image.open(io.BytesIO(buffer.getvalue()))
    # when it is made RGB and upright
    rgb = to_rgb(photo)
    # then it is the photo itself, with its pixels
    assert rgb is photo
    assert rgb.mode == "RGB" and rgb.size == (60, 40)
    # while a grey photo is converted, and a new image comes back
    grey = Image.new("L", (6, 4), 80)
    assert to_rgb(grey) is not grey and to_rgb(grey).getpixel((0, 0)) == (80, 80, 80)


def detailed_photo(width: int, height: int) -> Image.Image:
    """Noise over a colour gradient: every pixel differs, as in a real photo."""
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    rng = np.random.default_rng(0)
    pixels = 255 * np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2) * 0.7
    pixels = pixels + rng.normal(0, 25, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("size", [(291, 218), (64, 64), (899, 699), (1, 1)])
def test_shrinking_draws_the_pixels_pils_bilinear_filter_draws(size: tuple[int, int]) -> None:
    # given a detailed 1600 x 1200 photo
    photo = detailed_photo(1600, 1200) if size != (899, 699) else detailed_photo(900, 700)
    # when it is shrunk by torch's kernels and by PIL's
    ours = np.asarray(shrink(photo, size), np.int16)
    pils = np.asarray(photo.resize(size, Image.Resampling.BILINEAR), np.int16)
    # then the pixels are PIL's, give or take one level
    assert ours.shape == pils.shape == (size[1], size[0], 3)
    difference = np.abs(ours - pils)
    assert difference.max() <= 1
    assert difference.mean() < 0.02


@pytest.mark.parametrize(
    "photo, size",
    [
        (detailed_photo(100, 80), (200, 160)),  # enlarged
        (detailed_photo(100, 80), (50, 80)),  # one side kept
        (detailed_photo(100, 80).convert("L"), (50, 40)),  # not RGB
    ],
)
def test_what_is_not_shrunk_both_ways_in_rgb_is_resized_by_pil(photo, size) -> None:
    resized = shrink(photo, size)
    assert resized.tobytes() == photo.resize(size, Image.Resampling.BILINEAR).tobytes()


def test_the_backbone_entry_carries_its_own_preprocessing() -> None:
    backbone = get_backbone("efficientnet_lite0")
    tensor = backbone.transforms()(Image.new("RGB", (300, 120), (255, 255, 255)))
    assert tuple(tensor.shape) == (3, 224, 224)
    # white maps to (1 - mean) / std for this entry's normalisation
    expected = (1 - backbone.mean[0]) / backbone.std[0]
    assert abs(float(tensor[0, 0, 0]) - expected) < 1e-3
    assert prepare(Image.new("RGB", (300, 120))).size == (300, 300)
