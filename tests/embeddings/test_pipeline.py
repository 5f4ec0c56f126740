"""Each pipeline option changes the vectors as intended (real EfficientNet-Lite weights)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from embeddings.pipeline import (
    PipelineConfig,
    catalog_views,
    crop_to_box,
    largest_component,
    load_pipeline,
    rotate,
)
from embeddings.postprocess import PostProcessor, fit_postprocessor
from embeddings.preprocess import crop_box, parse_box
from tests.conftest import DEMO_DIR, pick_rows

BILINEAR = Image.Resampling.BILINEAR
BASE = PipelineConfig(
    pooling="gem",
    mirror=False,
    suppress_background=False,
    colour_weight=0,
    layout_weight=0,
    catalog_rotation=0,
)


def demo_photo(category: str, nth: int = 0) -> Image.Image:
    row = pick_rows(nth + 1, (category,))[nth]
    with Image.open(DEMO_DIR / "images" / row["image"]) as image:
        image.load()
        return image.copy()


def odd_padding_free(image: Image.Image) -> Image.Image:
    # Letterboxing an odd margin puts the extra pixel on one side; keep margins even.
    width, height = image.size
    return image.crop((0, 0, width - (width - height) % 2, height))


@pytest.fixture(scope="module")
def mirror_pipeline():
    return load_pipeline(dataclasses.replace(BASE, mirror=True), download=False)


def test_under_mirror_averaging_a_mirrored_photo_embeds_like_the_original(mirror_pipeline) -> None:
    boot = odd_padding_free(demo_photo("boots"))
    xb = mirror_pipeline.embed_catalog([boot, ImageOps.mirror(boot)])
    assert float(xb[0] @ xb[1]) > 0.9999


def test_without_mirror_averaging_a_mirrored_photo_differs() -> None:
    pipeline = load_pipeline(BASE, download=False)
    boot = odd_padding_free(demo_photo("boots"))
    xb = pipeline.embed_catalog([boot, ImageOps.mirror(boot)])
    assert float(xb[0] @ xb[1]) < 0.999


def test_an_ensemble_concatenates_the_backbones_and_the_colour_part() -> None:
    # given the same backbone twice (the mechanism is the same for two networks) and colour
    config = dataclasses.replace(
        BASE,
        backbones=(("efficientnet_lite0", 1.0), ("efficientnet_lite0", 0.5)),
        colour_weight=0.2,
    )
    pipeline = load_pipeline(config, download=False)
    # when
    xb = pipeline.embed_catalog([demo_photo("heels"), demo_photo("sandals")])
    # then 1280 + 1280 + 72 colour bins, unit length
    assert xb.shape == (2, pipeline.dim) == (2, 1280 + 1280 + 72)
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, atol=1e-5)
    assert pipeline.model_id.startswith("ensemble2@")


def test_catalog_rotation_tilts_a_catalog_photo_both_ways_at_the_cost_of_the_upright_pair() -> None:
    tilted = dataclasses.replace(BASE, mirror=True, catalog_rotation=8)
    assert catalog_views(tilted) == ((8, False), (-8, True))
    assert catalog_views(dataclasses.replace(tilted, catalog_rotation=0)) == (
        (0, False),
        (0, True),
    )
    assert catalog_views(dataclasses.replace(tilted, mirror=False)) == ((8, False), (-8, False))


@pytest.mark.parametrize("degrees", [-1, 45, 90])
def test_it_rejects_a_catalog_rotation_that_is_no_small_tilt(degrees: float) -> None:
    with pytest.raises(ValueError, match="rotation"):
        dataclasses.replace(BASE, catalog_rotation=degrees)


def test_under_catalog_rotation_a_mirrored_photo_still_embeds_like_the_original() -> None:
    # The mirror of the photo tilted by +8 is the mirrored photo tilted by -8: drawn on
    # canvases of even sides, exactly, whatever the photo's size. (On the canvases PIL's own
    # rotate draws, these landscape photos' cosines were 0.9973-0.9983: an odd crop margin.)
    config = dataclasses.replace(BASE, mirror=True, layout_weight=0.5, catalog_rotation=8)
    pipeline = load_pipeline(config, download=False, precision="fp32")
    photos = [
        odd_padding_free(demo_photo(category, n)) for category, n in (("boots", 0), ("heels", 3))
    ]
    photos.append(photos[0].resize((photos[0].width * 3 + 1, photos[0].height * 3)))
    for photo in photos:
        xb = pipeline.embed_catalog([photo, ImageOps.mirror(photo)])
        assert float(xb[0] @ xb[1]) > 0.9999


def test_catalog_rotation_brings_the_catalog_vector_closer_to_a_tilted_photo() -> None:
    # given a catalog photo and a shopper's photo of it, tilted by 8 degrees
    config = dataclasses.replace(BASE, mirror=True, catalog_rotation=8)
    upright = load_pipeline(dataclasses.replace(config, catalog_rotation=0), download=False)
    tilting = load_pipeline(config, download=False)
    boot = demo_photo("boots")
    shot = rotate(boot, 8, side=max(boot.size))  # a photo of its own: not shrunk
    # when
    xq = upright.embed_query([shot])[0]
    # then the query side is the same, and the tilted catalog views are nearer to it
    np.testing.assert_allclose(tilting.embed_query([shot])[0], xq, atol=1e-6)
    near_upright = float(upright.embed_catalog([boot])[0] @ xq)
    near_tilted = float(tilting.embed_catalog([boot])[0] @ xq)
    assert near_tilted > near_upright + 0.01


def test_a_rotated_photo_keeps_all_of_it_on_a_canvas_of_its_border_colour() -> None:
    # given a dark square on a white backdrop
    photo = Image.new("RGB", (300, 200), (255, 255, 255))
    photo.paste((20, 20, 20), (100, 50, 200, 150))
    # when
    turned = rotate(photo, 10, side=300)
    # then the canvas grew to hold the corners, which are filled white, not black
    assert turned.width > 300 and turned.height > 200
    assert turned.getpixel((0, 0)) == turned.getpixel((turned.width - 1, 0)) == (255, 255, 255)
    assert rotate(photo, 0, side=300) is photo


@pytest.mark.parametrize("degrees", [8, -8, 20])
def test_a_large_photo_is_turned_at_the_size_asked_for_and_a_small_one_is_not_enlarged(
    degrees: float,
) -> None:
    # given a 12 MP photo and a thumbnail
    photo = Image.new("RGB", (4000, 3000), (200, 180, 160))
    thumbnail = Image.new("RGB", (200, 150), (200, 180, 160))
    # when each is turned to be drawn with a shorter side of 256
    turned, small = rotate(photo, degrees, side=256), rotate(thumbnail, degrees, side=256)
    # then the large one's turned canvas has that shorter side; the thumbnail keeps its scale
    assert min(turned.size) == 256
    own_size = thumbnail.rotate(degrees, expand=True).size  # PIL's canvas, not scaled
    assert all(abs(ours - its) <= 2 for ours, its in zip(small.size, own_size, strict=True))
    # and both canvases have even sides (a centre crop cuts as much off either edge)
    assert all(length % 2 == 0 for length in turned.size + small.size)


def test_photos_shrunk_by_torchs_kernels_embed_as_shrunk_by_pil(monkeypatch) -> None:
    # given the default pipeline and photos at the size the shop stores (the catalog path
    # shrinks each twice: for its tilted views and for its colour histogram)
    from embeddings import pipeline as module

    pipeline = load_pipeline(PipelineConfig(), download=False)
    photos = [demo_photo(c).resize((1200, 1200)) for c in ("boots", "heels", "sandals")]
    # when they are embedded, and embedded again with PIL doing the shrinking
    ours = pipeline.embed_catalog(photos)
    monkeypatch.setattr(module, "shrink", lambda image, size: image.resize(size, BILINEAR))
    pils = pipeline.embed_catalog(photos)
    # then the vectors are the same but for rounding: the model id, and the index, stay
    # (PIL's resize with a reducing gap of 2, a box filter first, came to 0.9996; bicubic
    # rather than bilinear to 0.9986)
    assert float(np.min(np.sum(ours * pils, axis=1))) > 0.9999


def test_tilt_oversample_0_turns_as_before_2026_12_03_on_pils_canvas_at_512_pixels() -> None:
    # given a stored-size photo (an index built before the change still serves with this)
    photo = demo_photo("boots").resize((1200, 900))
    # when it is turned the old way
    turned = rotate(photo, 8, side=0)
    # then it was shrunk to 512 pixels and turned on PIL's own canvas, as before
    shrunk = photo.resize((683, 512), Image.Resampling.BILINEAR)
    assert turned.size == shrunk.rotate(8, expand=True).size
    assert PipelineConfig(tilt_oversample=0).key().endswith(".rot8")


def test_the_tilted_views_are_drawn_at_the_backbones_size_unless_oversampled() -> None:
    # given a tilting configuration, and the same drawn at twice the backbone's size
    config = dataclasses.replace(BASE, mirror=True, catalog_rotation=8)
    finer = dataclasses.replace(config, tilt_oversample=2)
    # then they are different retrieval configurations (their vectors are not interchangeable)
    fast, fine = load_pipeline(config, download=False), load_pipeline(finer, download=False)
    assert fast.model_id != fine.model_id
    assert config.key().endswith("rot8x1") and finer.key().endswith("rot8x2")
    # and the vectors stay close, but are not the same
    boot = demo_photo("boots")
    closeness = float(fast.embed_catalog([boot])[0] @ fine.embed_catalog([boot])[0])
    assert 0.98 < closeness < 0.99999


@pytest.mark.parametrize("oversample", [0.5, 0.99, 4.5, -1])
def test_it_rejects_a_tilt_oversample_outside_one_to_four_but_the_earlier_drawings_0(
    oversample: float,
) -> None:
    with pytest.raises(ValueError, match="1 to 4 times the backbone's size"):
        dataclasses.replace(BASE, catalog_rotation=8, tilt_oversample=oversample)


def test_the_configuration_is_part_of_the_model_id() -> None:
    plain = load_pipeline(BASE, download=False)
    gem_mirror = load_pipeline(PipelineConfig(), download=False)
    assert plain.model_id != gem_mirror.model_id
    assert plain.model_id.startswith("efficientnet_lite0@")
    assert len(gem_mirror.model_id) <= 100  # fits ImageVector.model_id


def test_query_side_background_suppression_crops_to_the_product() -> None:
    # given a shoe photo pasted small onto a large flat backdrop
    pipeline = load_pipeline(BASE, download=False)
    shoe = demo_photo("sneakers").resize((200, 150))
    scene = Image.new("RGB", (640, 640), (128, 128, 128))
    scene.paste(shoe, (400, 420))
    # when
    cropped = pipeline.suppress_background([scene])[0]
    # then the crop is much smaller than the scene and contains the shoe's centre
    assert cropped.size[0] * cropped.size[1] < 0.5 * 640 * 640


def test_product_boxes_stop_early_and_match_the_full_forward_pass() -> None:
    # given shopper-like photos: shoes on textured floors, and a plain catalog photo
    from embeddings.pipeline import pooled_features, product_boxes
    from embeddings.shopper import shopper_photos

    pipeline = load_pipeline(BASE, download=False)
    photos = shopper_photos([demo_photo("boots"), demo_photo("heels")], seed=3)
    photos.append(demo_photo("sneakers"))
    extractor = pipeline.extractors[0]
    # when the boxes come from the first feature map alone
    early = product_boxes(extractor, photos)
    # then they are the boxes of the whole forward pass (in fp32, as the boxes always are)
    fp32 = load_pipeline(BASE, download=False, precision="fp32").extractors[0]
    full = pooled_features(fp32, photos, "stretch", flip=False)["box"]
    assert early.shape == (3, 4)
    np.testing.assert_allclose(early, full, atol=1e-6)
    # and an fp32 extractor finds the same boxes as the product's reduced-precision one
    np.testing.assert_allclose(product_boxes(fp32, photos), early, atol=1e-6)
    # and the first map is the first of the feature maps
    x = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(extractor.model.first_map(x), extractor.model.feature_maps(x)[0])


def test_the_layout_part_tells_where_the_product_lies() -> None:
    # given one shoe at the top of a plain photo and the same shoe at the bottom
    pipeline = load_pipeline(dataclasses.replace(BASE, layout_weight=0.5), download=False)
    shoe = demo_photo("sneakers").resize((112, 84))
    top, bottom = (Image.new("RGB", (224, 224), (200, 200, 200)) for _ in range(2))
    top.paste(shoe, (56, 10))
    bottom.paste(shoe, (56, 130))
    # when
    x = pipeline.embed_catalog([top, bottom])
    # then shape (global pooling) tells them apart far less than the layout part does (2.9x in
    # fp32; bf16 rounding moves the ratio by about 0.1)
    (shape_dim, shape_share, _), (layout_dim, layout_share, _) = pipeline.parts
    assert x.shape[1] == pipeline.dim == shape_dim + layout_dim and layout_dim % 9 == 0
    assert (shape_share, layout_share) == (0.5, 0.5)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    shape, layout = x[:, :shape_dim] / np.sqrt(0.5), x[:, shape_dim:] / np.sqrt(0.5)
    assert 1 - float(layout[0] @ layout[1]) > 2 * (1 - float(shape[0] @ shape[1]))


def test_the_layout_part_is_mirror_invariant() -> None:
    # Mirrored regions are added to the grid; averaging the two views makes it exact.
    boot = odd_padding_free(demo_photo("boots"))
    for mirror, least in ((False, 0.98), (True, 0.9999)):
        config = dataclasses.replace(BASE, layout_weight=0.5, mirror=mirror)
        pipeline = load_pipeline(config, download=False)
        layout = pipeline.embed_catalog([boot, ImageOps.mirror(boot)])[:, -pipeline.parts[1][0] :]
        assert float(layout[0] @ layout[1]) / float(layout[0] @ layout[0]) > least


def test_parts_are_whitened_apart_and_survive_a_round_trip() -> None:
    # given vectors of two parts: 24 "shape" dimensions and 8 "colour" ones
    rng = np.random.default_rng(0)
    shape = rng.normal(size=(300, 24)) * np.linspace(3, 0.1, 24)
    colour = np.abs(rng.normal(size=(300, 8)))
    l2 = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    xb = np.hstack([np.sqrt(0.8) * l2(shape), np.sqrt(0.2) * l2(colour)]).astype(np.float32)
    # when
    post = fit_postprocessor(xb, whiten_dims=16, parts=[(24, 0.8, True), (8, 0.2, False)])
    loaded = PostProcessor.from_bytes(post.to_bytes())
    out = loaded.apply(xb)
    # then the shape part is whitened to 16 dimensions, the colour part kept, at its share
    assert out.shape == (300, 16 + 8) == (300, post.output_dim(32))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out[:, 16:], axis=1) ** 2, 0.2, atol=1e-5)
    np.testing.assert_allclose(out[:, 16:], np.sqrt(0.2) * l2(colour), atol=1e-5)
    np.testing.assert_allclose(out, post.apply(xb), atol=1e-6)


def test_whitening_keeps_unit_norm_and_reduces_dimension() -> None:
    rng = np.random.default_rng(0)
    xb = rng.normal(size=(200, 32)).astype(np.float32) * np.linspace(3, 0.1, 32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    post = fit_postprocessor(xb, whiten_dims=16)
    out = post.apply(xb)
    assert out.shape == (200, 16) == (200, post.output_dim(32))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def two_categories(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # Two categories that differ along one of 16 dimensions; the others vary more, but
    # say nothing about the category (pose, lighting, background).
    labels = np.array(["a"] * (n // 2) + ["b"] * (n // 2))
    x = rng.normal(size=(n, 16)).astype(np.float32) * np.r_[1.0, np.full(15, 2.0)]
    x[: n // 2, 0] += 3.0
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def nearest_same_label_share(xq, q_labels, xb, b_labels) -> float:
    return float(np.mean(b_labels[(xq @ xb.T).argmax(axis=1)] == q_labels))


def test_the_projection_head_separates_categories_and_survives_a_round_trip() -> None:
    # given a catalog and unseen queries of two categories
    rng = np.random.default_rng(1)
    xb, b_labels = two_categories(rng, 200)
    xq, q_labels = two_categories(rng, 200)
    # when
    post = fit_postprocessor(xb, list(b_labels), head_weight=0.9)
    loaded = PostProcessor.from_bytes(post.to_bytes())
    # then unseen queries find their own category more often than before
    before = nearest_same_label_share(xq, q_labels, xb, b_labels)
    after = nearest_same_label_share(loaded.apply(xq), q_labels, loaded.apply(xb), b_labels)
    assert after > before + 0.03
    np.testing.assert_allclose(loaded.apply(xq), post.apply(xq), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(loaded.apply(xq), axis=1), 1.0, atol=1e-5)


def test_largest_component_keeps_the_biggest_region() -> None:
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = True
    mask[2:5, 2:5] = True
    assert largest_component(mask).sum() == 9
    assert not largest_component(mask)[0, 0]


def test_a_tiny_saliency_box_keeps_the_whole_photo() -> None:
    image = Image.new("RGB", (100, 50))
    assert crop_to_box(image, np.array([0.5, 0.5, 0.51, 0.51])).size == (100, 50)


@pytest.mark.parametrize(
    "text",
    ["", "1,2,3", "a,b,c,d", "0.5,0.5,0.2,0.9", "-0.1,0,1,1", "0,0,1.5,1", "nan,0,1,1",
     "0,0,inf,1", "0.1,0.1,0.12,0.9"],
)  # fmt: skip
def test_a_bad_crop_box_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="crop box"):
        parse_box(text)


def test_a_crop_box_cuts_shares_of_the_photo() -> None:
    image = Image.new("RGB", (200, 100))
    box = parse_box("0.25, 0.5, 0.75, 1")
    assert crop_box(image, box).size == (100, 50)


def test_views_prepared_together_are_the_views_prepared_alone() -> None:
    # given photos larger than the size they are turned at, in batches of 2 (the next batch is
    # prepared while the model runs on this one), seen upright, tilted, and tilted back mirrored
    from embeddings.pipeline import pooled_views

    extractor = load_pipeline(BASE, download=False, precision="fp32").extractors[0]
    photos = []
    for category in ("boots", "heels", "sneakers"):
        photo = demo_photo(category)
        scale = 4 * 256 / min(photo.size)  # larger than the 256 px a view is turned at
        photos.append(photo.resize((round(photo.width * scale), round(photo.height * scale))))
    views = ((0.0, False), (8.0, False), (-8.0, True))
    # when the three views are pooled in one pass
    together = pooled_views(extractor, photos, "centre", views, batch_size=2)
    # then each view's features are those of that view pooled alone
    for view, features in zip(views, together, strict=True):
        alone = pooled_views(extractor, photos, "centre", (view,), batch_size=3)[0]
        assert features["gem"].shape == (3, extractor.dim)
        np.testing.assert_allclose(features["gem"], alone["gem"], atol=1e-5)
        np.testing.assert_allclose(features["layout"], alone["layout"], atol=1e-5)
