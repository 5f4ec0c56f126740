"""Which decoding shortcuts the settings allow for catalog and search photos."""

from __future__ import annotations

from recommender.embedding import catalog_decode_side, current_pipeline, query_decode_side


def test_photos_are_decoded_in_full_by_default() -> None:
    assert catalog_decode_side(current_pipeline()) is None
    assert query_decode_side() is None


def test_drafting_keeps_what_the_centre_crop_needs_and_twice_that_for_uploads(settings) -> None:
    # given the default centre crop (resize to 256, cut 224) with drafting switched on
    settings.LOOKALIKE_DRAFT = True
    settings.LOOKALIKE_QUERY_DRAFT = True
    # then
    assert catalog_decode_side(current_pipeline()) == 256
    assert query_decode_side() == 512
