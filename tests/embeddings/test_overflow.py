"""Reduced precision that overflows (fp16 past 65,504) never leaves a non-finite vector: those
rows are computed again in fp32, with the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embeddings.extractor import _build_extractor
from embeddings.pipeline import Pipeline, PipelineConfig
from embeddings.registry import get_backbone


def scale_last_conv(extractor, factor: float):
    """Make the network's last convolution's outputs huge (ResNet's ReLU does not clip them)."""
    last = [m for m in extractor.model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
    return extractor


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(get_backbone("resnet18").build().state_dict(), path)
    return str(path)


def photos() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)) for _ in range(3)]


def build(weights: str, precision: str, factor: float = 1e6):
    return scale_last_conv(
        _build_extractor("resnet18", weights, "cpu", precision, download=False), factor
    )


def test_the_overflow_is_real_in_fp16_and_absent_in_fp32(weights) -> None:
    # given the same scaled network in fp16 and in fp32, with the guard bypassed
    fp16, fp32 = build(weights, "fp16"), build(weights, "fp32")
    batch = torch.stack([fp16.backbone.transforms()(p) for p in photos()])
    # then fp16 overflows where fp32 does not (so the next tests test something)
    assert not np.isfinite(fp16._forward(batch)).any()
    assert np.isfinite(fp32._forward(batch)).all()


def test_an_extractor_computes_overflowed_rows_again_in_fp32(weights) -> None:
    fp16, fp32 = build(weights, "fp16"), build(weights, "fp32")
    # when
    vectors = fp16.embed(photos(), batch_size=2)
    # then every row is finite and the fp32 vector
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors, fp32.embed(photos()), atol=1e-5)


def test_a_pipeline_computes_overflowed_rows_again_in_fp32(weights) -> None:
    config = PipelineConfig(backbones=(("resnet18", 1.0),))
    fp16 = Pipeline(config, [build(weights, "fp16")])
    fp32 = Pipeline(config, [build(weights, "fp32")])
    # when catalog and search vectors are made in fp16
    catalog, query = fp16.embed_catalog(photos()), fp16.embed_query(photos())
    # then they are finite and the fp32 ones
    assert np.isfinite(catalog).all() and np.isfinite(query).all()
    np.testing.assert_allclose(catalog, fp32.embed_catalog(photos()), atol=1e-5)
    np.testing.assert_allclose(query, fp32.embed_query(photos()), atol=1e-5)
