"""Registry entries and weight resolution, with weights files the tests write themselves."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import models

from embeddings import registry
from embeddings.extractor import _build_extractor
from embeddings.registry import WeightsUnavailable, get_backbone, resolve_backbone_name


@pytest.fixture
def offline(monkeypatch, tmp_path: Path) -> Path:
    """An empty torch cache and no network: the edge of the world, mocked."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub"


def random_weights(name: str, path: Path) -> Path:
    builder = {"resnet18": models.resnet18, "resnet50": models.resnet50}[name]
    torch.manual_seed(0)
    torch.save(builder(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_resnet_entries_embed_to_their_dimension_from_a_weights_file(
    name: str, dim: int, tmp_path: Path
) -> None:
    # given a state dict file (random init; the real one is torchvision's ImageNet weights)
    weights = random_weights(name, tmp_path / f"{name}.pth")
    # when
    extractor = _build_extractor(name, str(weights), "cpu", "fp32", download=False)
    xb = extractor.embed([Image.new("RGB", (300, 200), (90, 40, 20)), Image.new("L", (64, 64))])
    # then
    assert xb.shape == (2, dim) and get_backbone(name).dim == dim
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, atol=1e-5)
    assert extractor.model_id.startswith(f"{name}@")


def test_resnet_entries_use_imagenet_preprocessing_at_224() -> None:
    for name in ("resnet18", "resnet50"):
        backbone = get_backbone(name)
        assert backbone.input_size == 224
        assert backbone.mean == (0.485, 0.456, 0.406)
        assert backbone.std == (0.229, 0.224, 0.225)
        tensor = backbone.transforms()(Image.new("RGB", (500, 100), (0, 0, 0)))
        assert tuple(tensor.shape) == (3, 224, 224)


def test_a_weights_file_for_another_backbone_is_refused(tmp_path: Path) -> None:
    weights = random_weights("resnet18", tmp_path / "resnet18.pth")
    with pytest.raises(WeightsUnavailable, match="do not fit resnet50"):
        get_backbone("resnet50").load(weights, download=False)


def test_a_missing_weights_file_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable, match="LOOKALIKE_WEIGHTS_FILE"):
        get_backbone("resnet50").load(tmp_path / "nope.pth")


def test_offline_without_cached_weights_explains_how_to_get_them(offline: Path) -> None:
    with pytest.raises(WeightsUnavailable) as error:
        get_backbone("resnet50").weights_path()
    message = str(error.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert "LOOKALIKE_BACKBONE=efficientnet_lite0" in message


def test_weights_in_torchvisions_cache_are_used_without_download(offline: Path) -> None:
    # given the file torchvision would have downloaded, already in its cache
    cached = offline / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    random_weights("resnet18", cached)
    # when / then
    assert get_backbone("resnet18").weights_path() == cached


def test_auto_prefers_resnet50_and_falls_back_to_the_offline_backbone(
    offline: Path, tmp_path: Path
) -> None:
    name, reason = resolve_backbone_name("auto")
    assert name == "efficientnet_lite0"
    assert "resnet50 weights are unavailable" in reason

    weights = random_weights("resnet50", tmp_path / "r50.pth")
    assert resolve_backbone_name("auto", str(weights))[0] == "resnet50"


def test_an_unknown_backbone_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="efficientnet_lite0, efficientnet_lite1"):
        get_backbone("vgg")
    assert registry.list_backbones() == [
        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18", "resnet50"
    ]  # fmt: skip


def test_a_compiled_extractor_gives_the_eager_vectors_on_cpu(tmp_path: Path) -> None:
    # given resnet18 from a weights file, eager and through torch.compile (inductor, frozen)
    weights = str(random_weights("resnet18", tmp_path / "resnet18.pth"))
    eager = _build_extractor("resnet18", weights, "cpu", "fp32", download=False)
    compiled = _build_extractor("resnet18", weights, "cpu", "fp32", download=False, compile=True)
    photos = [Image.new("RGB", (300, 200), (90, 40, 20)), Image.new("RGB", (64, 96), (10, 200, 30))]
    # when
    xe, xc = eager.embed(photos, batch_size=2), compiled.embed(photos, batch_size=2)
    # then: the same vectors (freezing folds constants; the arithmetic is the same)
    assert np.sum(xe * xc, axis=1).min() > 0.9999
