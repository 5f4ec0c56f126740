"""The shipped scorer, on real pretrained features: it prefers the better photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from recommender.aesthetics.reasons import BLURRY, DARK, LOW_RESOLUTION, photo_reasons
from recommender.aesthetics.scoring import SHIPPED_SCORER, load_scorer, score_images
from tests.conftest import DEMO_DIR, pick_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    rows = pick_rows(1, ("sneakers", "boots", "heels"))
    return [Image.open(DEMO_DIR / "images" / row["image"]).convert("RGB") for row in rows]


def test_it_scores_a_photo_above_its_blurred_and_darkened_copies(photos):
    # given each photo with a blurred and a darkened copy
    blurred = [p.filter(ImageFilter.GaussianBlur(3)) for p in photos]
    darkened = [ImageEnhance.Brightness(p).enhance(0.3) for p in photos]
    # when
    scores = score_images(photos + blurred + darkened).reshape(3, len(photos))
    # then
    assert (scores[0] > scores[1]).all(), scores
    assert (scores[0] > scores[2]).all(), scores


def test_scores_are_on_the_rating_scale_and_the_file_is_small(photos):
    scorer = load_scorer()
    scores = scorer.score(photos)
    assert np.all((scores > -20) & (scores < 120))
    assert scorer.version.startswith("aesthetics@")
    assert SHIPPED_SCORER.stat().st_size < 1_000_000


def test_reasons_name_blur_darkness_and_low_resolution(photos):
    photo = photos[0]
    assert BLURRY in photo_reasons(photo.filter(ImageFilter.GaussianBlur(4)))
    assert DARK in photo_reasons(ImageEnhance.Brightness(photo).enhance(0.25))
    assert LOW_RESOLUTION in photo_reasons(photo.resize((200, 150)))
    assert not {BLURRY, DARK, LOW_RESOLUTION} & set(photo_reasons(photo))
