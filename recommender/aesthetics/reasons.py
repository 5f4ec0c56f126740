"""Likely reasons a product photo looks poor, measured directly on its pixels (no Django).

The learned score says *how* good a photo looks; these simple measures say *why* a low one is
low, in words a merchant can act on. Thresholds were set on the demo catalog's photos and their
synthetic degradations (see docs/aesthetics.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

BLURRY = "blurry"
DARK = "dark"
LOW_RESOLUTION = "low resolution"
CLUTTERED = "cluttered background"
CUT_OFF = "product cut off"
ADVICE = {
    BLURRY: "hold the camera still and focus on the product",
    DARK: "add light or shoot near a window",
    LOW_RESOLUTION: "upload a photo at least 600 pixels on its short side",
    CLUTTERED: "shoot on a plain background",
    CUT_OFF: "step back so the whole product is in the frame",
}

MIN_SIDE = 320
WORK_SIDE = 400
SHARPNESS_MIN = 60.0
BRIGHTNESS_MIN = 75.0
BORDER_EDGES_MAX = 16.0
BORDER = 0.12
EDGE_FOREGROUND_MAX = 0.6


def photo_reasons(image: Image.Image) -> list[str]:
    """The likely reasons this photo scores poorly (empty when none is measurable)."""
    reasons = []
    if min(image.size) < MIN_SIDE:
        reasons.append(LOW_RESOLUTION)
    grey = _working_copy(image)
    a = np.asarray(grey, dtype=np.float32)
    if sharpness(grey) < SHARPNESS_MIN:
        reasons.append(BLURRY)
    if a.mean() < BRIGHTNESS_MIN:
        reasons.append(DARK)
    if border_edges(grey) > BORDER_EDGES_MAX:
        reasons.append(CLUTTERED)
    elif touches_frame(a) > EDGE_FOREGROUND_MAX:
        reasons.append(CUT_OFF)
    return reasons


def _working_copy(image: Image.Image) -> Image.Image:
    # Measures are taken at one working size so photos of any size compare.
    grey = image.convert("L")
    scale = WORK_SIDE / min(grey.size)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    return grey.resize(size, Image.BILINEAR)


def sharpness(grey: Image.Image) -> float:
    """Variance of the Laplacian: low when edges are soft."""
    kernel = ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), 1, 128)
    return float(np.asarray(grey.filter(kernel), dtype=np.float32).var())


def border_edges(grey: Image.Image) -> float:
    """Mean edge strength in the frame around the product (busy backgrounds are high)."""
    edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    h, w = edges.shape
    bh, bw = max(1, int(h * BORDER)), max(1, int(w * BORDER))
    mask = np.ones_like(edges, dtype=bool)
    mask[bh : h - bh, bw : w - bw] = False
    return float(edges[mask].mean())


def touches_frame(a: np.ndarray) -> float:
    """The largest share of one image edge covered by something unlike the background."""
    edges = [a[0], a[-1], a[:, 0], a[:, -1]]
    background = np.median(np.concatenate(edges))
    return max(float(np.mean(np.abs(e - background) > 40)) for e in edges)
