"""The scorer's frozen features: two views of a photo through EfficientNet-Lite0 (no Django).

Global view: the whole photo letterboxed to 224 px, as the product pipeline sees it
(composition, framing, background), described by mean- and std-pooled activations of every
stage of the network, from edges to objects. Local view: five 224 px patches (corners and
centre) cut at native resolution, where sharpness, noise and compression survive (a resize
would hide them); only the early, low-level stages run on them, which keeps scoring cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from embeddings import load_extractor
from embeddings.preprocess import letterbox, to_rgb

BACKBONE = "efficientnet_lite0"
VIEW_SIZE = 224
PATCHES = 5
# The last block of each stage of EfficientNet-Lite0 (16, 24, 40, 80, 112, 192, 320 channels).
GLOBAL_TAPS = (0, 2, 4, 7, 10, 14, 15)
LOCAL_TAPS = (0, 2, 4, 7)
GLOBAL_DIM = 2 * (16 + 24 + 40 + 80 + 112 + 192 + 320 + 1280)
LOCAL_DIM = 2 * (16 + 24 + 40 + 80)
BATCH = 16


class PhotoFeatures:
    """Frozen multi-level features of the global view and of the native-resolution patches."""

    def __init__(self, device: str = "auto", precision: str = "auto") -> None:
        extractor = load_extractor(BACKBONE, device=device, precision=precision)
        self.net: nn.Module = extractor.model.net
        self.device = extractor.device
        self.autocast = extractor._autocast
        # The device and memory layout (channels_last) the extractor put the network in.
        self.to_device = extractor.to_device
        self.weights_id = extractor.weights_id
        backbone = extractor.backbone
        self.mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(backbone.std).view(1, 3, 1, 1)

    def __call__(
        self,
        images: Sequence[Image.Image],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(global (N, GLOBAL_DIM), local (N, PATCHES, LOCAL_DIM)) float32 features."""
        xg = [np.zeros((0, GLOBAL_DIM), np.float32)]
        xl = [np.zeros((0, PATCHES, LOCAL_DIM), np.float32)]
        for start in range(0, len(images), BATCH):
            chunk = [views(image) for image in images[start : start + BATCH]]
            xg.append(self._forward(torch.stack([g for g, _ in chunk]), GLOBAL_TAPS, True))
            patches = torch.cat([p for _, p in chunk])
            local = self._forward(patches, LOCAL_TAPS, False)
            xl.append(local.reshape(len(chunk), PATCHES, LOCAL_DIM))
            if progress:
                progress(len(chunk))
        return np.concatenate(xg), np.concatenate(xl)

    def _forward(self, batch: torch.Tensor, taps: tuple[int, ...], head: bool) -> np.ndarray:
        batch = self.to_device((batch - self.mean) / self.std)
        net = self.net
        pooled = []
        with torch.inference_mode(), self.autocast():
            x = net._swish(net._bn0(net._conv_stem(batch)))
            for i, block in enumerate(net._blocks[: max(taps) + 1]):
                x = block(x)
                if i in taps:
                    pooled += _mean_std(x)
            if head:
                pooled += _mean_std(net._swish(net._bn1(net._conv_head(x))))
        return torch.cat(pooled, 1).float().cpu().numpy()


def _mean_std(x: torch.Tensor) -> list[torch.Tensor]:
    x = x.float()
    return [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]


def views(image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """The global view (3, 224, 224) and PATCHES native-resolution patches, in 0..1."""
    rgb = to_rgb(image)
    global_view = _tensor(letterbox(rgb).resize((VIEW_SIZE, VIEW_SIZE), Image.BICUBIC))
    # A photo smaller than a patch is padded, never upscaled: upscaling would invent blur.
    width, height = rgb.size
    if width < VIEW_SIZE or height < VIEW_SIZE:
        canvas = Image.new("RGB", (max(width, VIEW_SIZE), max(height, VIEW_SIZE)), (255, 255, 255))
        canvas.paste(rgb, (0, 0))
        rgb = canvas
    right, bottom = rgb.width - VIEW_SIZE, rgb.height - VIEW_SIZE
    corners = [(0, 0), (right, 0), (0, bottom), (right, bottom), (right // 2, bottom // 2)]
    patches = [_tensor(rgb.crop((x, y, x + VIEW_SIZE, y + VIEW_SIZE))) for x, y in corners]
    return global_view, torch.stack(patches)


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
