"""The retrieval pipeline: how product photos and shopper photos become searchable vectors.

A ``PipelineConfig`` names every choice (backbones and their weights, crop, pooling, mirror
averaging, colour, learned whitening and projection head, query-side background
suppression). ``Pipeline.embed_catalog`` is what the shop stores for a product photo and
``Pipeline.embed_query`` what it searches with for an uploaded photo; the evaluation runs
these very methods. Learned parts live in ``embeddings.postprocess`` and are applied after.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from embeddings.extractor import DEFAULT_BATCH_SIZE, Extractor, finite_rows, load_extractor
from embeddings.postprocess import l2n
from embeddings.preprocess import shrink, to_rgb
from embeddings.registry import get_backbone

CROPS = ("letterbox", "centre")
POOLINGS = ("avg", "gem", "multi")
GEM_P = 3.0
COLOUR_BINS = (8, 3, 3)  # hue x saturation x value
LAYOUT_GRID = 3  # layout: 3 x 3 overlapping regions of the stride-16 map
LAYOUT_OVERLAP = 0.4  # share of a region's side it shares with its neighbour
# Until 2026-12-03 a photo was shrunk to this shorter side, then turned (tilt_oversample 0).
LEGACY_TURN_SIDE = 512
MIN_BOX_AREA = 0.05  # a saliency box smaller than this is noise: keep the whole photo
BOX_MARGIN = 0.02
# An upload is cut (background suppression, crop box) before its resize: decode it finer.
QUERY_DRAFT_MARGIN = 2

# (tag, images, compute) -> pooled features; the evaluation passes a disk cache here.
FeatureCache = Callable[[str, Sequence[Image.Image], Callable], dict[str, np.ndarray]]


@dataclass(frozen=True)
class PipelineConfig:
    """Every choice that changes the vectors; its key is part of the model id."""

    backbones: tuple[tuple[str, float], ...] = (("efficientnet_lite0", 1.0),)
    crop: str = "centre"
    pooling: str = "multi"
    mirror: bool = True
    colour_weight: float = 0.1
    # Share of the score for the layout: what lies where in the photo (same photo, same item).
    layout_weight: float = 0.5
    whiten_dims: int = 256
    head_weight: float = 0.7
    # Share of the head in an uploaded photo's query: 0 looks for the very product.
    query_head_weight: float = 0.0
    suppress_background: bool = True
    # Degrees each catalog photo is tilted by, one view each way (0: upright views only).
    catalog_rotation: float = 8.0
    # How finely a tilted view is drawn: the tilted photo's shorter side in multiples of the
    # side the backbone's resize brings it to (1: drawn at the size the network sees). 0: as
    # before 2026-12-03 (``rotate``), so that an index built then serves until reindexed.
    tilt_oversample: float = 1.0

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ValueError(f"Unknown crop {self.crop!r}; use one of {', '.join(CROPS)}.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}.")
        if not self.backbones or any(w <= 0 for _, w in self.backbones):
            raise ValueError("Give at least one backbone, each with a positive weight.")
        weights = (self.colour_weight, self.layout_weight, self.head_weight, self.query_head_weight)
        if not all(0 <= w < 1 for w in weights):
            raise ValueError("Colour, layout and head weights are shares of a score: 0 <= w < 1.")
        if self.colour_weight + self.layout_weight >= 1:
            raise ValueError("Colour and layout together must leave the shape a share: sum < 1.")
        if not 0 <= self.catalog_rotation < 45:
            raise ValueError("The catalog rotation is a tilt in degrees: 0 <= degrees < 45.")
        if not (1 <= self.tilt_oversample <= 4 or self.tilt_oversample == 0):
            raise ValueError(
                "A tilted view is drawn at 1 to 4 times the backbone's size (0: as before "
                "2026-12-03)."
            )

    def key(self) -> str:
        """Short text naming the choices, e.g. 'lb.gem.mir.col0.2.w256.h0.5.bg.rot8x1'."""
        parts = [
            {"letterbox": "lb", "centre": "cc"}[self.crop],
            self.pooling,
            "mir" if self.mirror else "",
            f"col{self.colour_weight:g}" if self.colour_weight else "",
            f"lay{self.layout_weight:g}" if self.layout_weight else "",
            f"w{self.whiten_dims}" if self.whiten_dims else "",
            f"h{self.head_weight:g}q{self.query_head_weight:g}" if self.head_weight else "",
            "bg" if self.suppress_background else "",
            (
                f"rot{self.catalog_rotation:g}"
                + (f"x{self.tilt_oversample:g}" if self.tilt_oversample else "")
                if self.catalog_rotation
                else ""
            ),
        ]
        return ".".join(p for p in parts if p)


# A view of a photo: (degrees it is rotated by, mirrored or not).
View = tuple[float, bool]


def query_views(config: PipelineConfig) -> tuple[View, ...]:
    """The views an uploaded photo is embedded from: upright, and mirrored too if configured."""
    return ((0.0, False), (0.0, True)) if config.mirror else ((0.0, False),)


def catalog_views(config: PipelineConfig) -> tuple[View, ...]:
    """The views a catalog photo is embedded from; their features are averaged.

    With a catalog rotation the photo is seen tilted one way and (mirrored, if mirror
    averaging is on) tilted the other way: a shopper rarely holds the phone straight, and
    the catalog vector then lies between the tilts. The mirror of a photo tilted by +a is
    the mirrored photo tilted by -a, so the pair is still the same for a photo and its
    mirror image, at the cost of the upright pair (two forward passes).
    """
    angle = config.catalog_rotation
    if not angle:
        return query_views(config)
    return ((angle, False), (-angle, config.mirror))


def decode_side(config: PipelineConfig, query: bool = False) -> int:
    """The shorter side a photo keeps when its JPEG is drafted (decoded scaled down)."""
    side = max(get_backbone(name).decode_side(config.crop) for name, _ in config.backbones)
    return side * QUERY_DRAFT_MARGIN if query else side


def parse_backbones(text: str) -> tuple[tuple[str, float], ...]:
    """'efficientnet_lite0:1,efficientnet_lite1:0.5' -> ((name, weight), ...); 1 if absent."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, weight = item.partition(":")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise ValueError(f"Bad backbone weight in {item!r}; write name:weight.") from None
    return tuple(out)


class Pipeline:
    """Loaded backbones plus a configuration: catalog photos and shopper photos to vectors."""

    def __init__(
        self,
        config: PipelineConfig,
        extractors: Sequence[Extractor],
        cache: FeatureCache | None = None,
    ) -> None:
        self.config = config
        self.extractors = list(extractors)
        self.cache = cache
        self.batch_size = DEFAULT_BATCH_SIZE

    @property
    def weights_id(self) -> str:
        """The backbones' weights hashes, joined."""
        return "+".join(e.weights_id for e in self.extractors)

    @property
    def model_id(self) -> str:
        """Backbones, weights and configuration: vectors of two model ids never mix."""
        backbones = "+".join(e.model_id for e in self.extractors)
        if len(self.extractors) > 1 or any(w != 1 for _, w in self.config.backbones):
            weights = ",".join(f"{n}:{w:g}" for n, w in self.config.backbones)
            digest = hashlib.sha256(f"{backbones}|{weights}".encode()).hexdigest()[:16]
            backbones = f"ensemble{len(self.extractors)}@{digest}"
        return f"{backbones}/{self.config.key()}"

    @property
    def device(self):
        """Where the (first) backbone runs."""
        return self.extractors[0].device

    @property
    def precision(self) -> str:
        """Arithmetic of the (first) backbone."""
        return self.extractors[0].precision

    @property
    def dim(self) -> int:
        """Dimension of the stored (raw) vectors."""
        return sum(dim for dim, _, _ in self.parts)

    @property
    def parts(self) -> list[tuple[int, float, bool]]:
        """The raw vector's components in order: (dimension, share of the score, whitened).

        Shape (the backbones' pooled features), then layout, then colour; each is a unit
        vector scaled by the square root of its share, so the shares add up in the cosine.
        """
        config = self.config
        shape = 1.0 - config.colour_weight - config.layout_weight
        out = [(sum(self._pooled_dim(e) for e in self.extractors), shape, True)]
        if config.layout_weight:
            out.append((self._layout_dim(self.extractors[0]), config.layout_weight, True))
        if config.colour_weight:
            out.append((int(np.prod(COLOUR_BINS)), config.colour_weight, False))
        return out

    def embed_catalog(self, images: Sequence[Image.Image], progress=None) -> np.ndarray:
        """Vectors of product photos, as stored per (image hash, model id)."""
        rgb = [to_rgb(image) for image in images]
        return self._embed(rgb, progress, catalog_views(self.config))

    def embed_query(self, images: Sequence[Image.Image], progress=None) -> np.ndarray:
        """Vectors of shopper photos: upright views after background suppression."""
        rgb = [to_rgb(image) for image in images]
        if self.config.suppress_background:
            rgb = self.suppress_background(rgb)
        return self._embed(rgb, progress)

    # Extractor-compatible name: the catalog side is what gets stored.
    embed = embed_catalog

    def suppress_background(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Crop each photo to the region that stands out from its border (floor, table)."""
        if self.cache is not None:  # the evaluation: the same boxes, from its cached features
            boxes = self._pooled(self.extractors[0], images, "stretch", flip=False)["box"]
        else:
            boxes = product_boxes(self.extractors[0], images, self.batch_size)
        return [crop_to_box(image, box) for image, box in zip(images, boxes, strict=True)]

    def _embed(
        self, images: list[Image.Image], progress, views: Sequence[View] | None = None
    ) -> np.ndarray:
        """Vectors averaged over views of the photos (an upload's views unless given)."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        views = query_views(self.config) if views is None else views
        parts, layout = [], None
        for extractor, (_, weight) in zip(self.extractors, self.config.backbones, strict=True):
            # One forward pass per view gives every pooling (and the layout) at once.
            pooled = self._pooled_views(extractor, images, self.config.crop, tuple(views))
            # The mean over a photo's views is the same for it and its mirror image (left or
            # right shoe): the views of one are the mirrored views of the other.
            vectors = l2n(np.mean([p[self.config.pooling] for p in pooled], axis=0))
            parts.append(float(np.sqrt(weight)) * vectors)
            if layout is None and self.config.layout_weight:
                layout = l2n(np.mean([p["layout"] for p in pooled], axis=0))
            if progress:
                progress(len(images))
        shape = l2n(np.hstack(parts))
        config = self.config
        if not config.colour_weight and not config.layout_weight:
            return self._finite(shape, images, views)
        # Shares of the cosine: shape + layout + colour = 1, so shape and layout dominate.
        out = [np.sqrt(1 - config.colour_weight - config.layout_weight) * shape]
        if config.layout_weight:
            out.append(np.sqrt(config.layout_weight) * layout)
        if config.colour_weight:
            out.append(np.sqrt(config.colour_weight) * colour_histograms(images))
        return self._finite(l2n(np.hstack(out)), images, views)

    def _finite(self, vectors: np.ndarray, images: list, views: Sequence[View]) -> np.ndarray:
        """Rows that overflowed in reduced precision, computed again in fp32 (same weights)."""
        fp32 = lambda: Pipeline(self.config, [e.full_precision() for e in self.extractors])  # noqa: E731
        return finite_rows(
            vectors,
            "fp32" if all(e.dtype is None for e in self.extractors) else self.precision,
            lambda rows: fp32()._embed([images[i] for i in rows], None, views),
        )

    def _layout_dim(self, extractor: Extractor) -> int:
        probe = torch.zeros(1, 3, extractor.backbone.input_size, extractor.backbone.input_size)
        with torch.inference_mode():
            return extractor.model.feature_maps(probe)[0].shape[1] * LAYOUT_GRID**2

    def _pooled_dim(self, extractor: Extractor) -> int:
        if self.config.pooling != "multi":
            return extractor.backbone.dim
        probe = torch.zeros(1, 3, extractor.backbone.input_size, extractor.backbone.input_size)
        with torch.inference_mode():
            return sum(m.shape[1] for m in extractor.model.feature_maps(probe))

    def _pooled_views(
        self, extractor: Extractor, images: Sequence[Image.Image], crop: str, views: tuple
    ) -> list[dict[str, np.ndarray]]:
        oversample = self.config.tilt_oversample
        if self.cache is not None:  # the evaluation caches each view apart
            side = tilt_side(extractor, crop, oversample)
            return [
                self._pooled(extractor, rotate_all(images, angle, side), crop, flip)
                for angle, flip in views
            ]
        return pooled_views(
            extractor, images, crop, views, self.batch_size, tilt_oversample=oversample
        )

    def _pooled(
        self, extractor: Extractor, images: Sequence[Image.Image], crop: str, flip: bool
    ) -> dict[str, np.ndarray]:
        tag = f"{extractor.model_id}/{crop}/{'flip' if flip else 'plain'}"
        if self.config.layout_weight and crop != "stretch":
            # Older cached features lack the layout: those configurations keep their cache.
            tag += "/layout"
        compute = lambda batch: pooled_features(  # noqa: E731
            extractor, batch, crop, flip, self.batch_size
        )
        if self.cache is None:
            return compute(images)
        return self.cache(tag, images, compute)


def pooled_features(
    extractor: Extractor,
    images: Sequence[Image.Image],
    crop: str,
    flip: bool,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, np.ndarray]:
    """One forward pass per batch, every pooling at once: avg, gem, multi, layout, boxes."""
    return pooled_views(extractor, images, crop, ((0.0, flip),), batch_size)[0]


def product_boxes(
    extractor: Extractor, images: Sequence[Image.Image], batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """``pooled_features(..., "stretch", False)["box"]`` computed in fp32, running the network
    only as far as the map the boxes come from (about half of EfficientNet-Lite0's forward pass).

    Not in the extractor's reduced precision: a box is a threshold on a saliency map, and bf16
    rounding moved it by a grid cell for 1 of 24 shopper photos, whose search vector then lay
    at cosine 0.990 from the fp32 one (docs/benchmarks/embedding.md).
    """
    transform = extractor.backbone.transforms("stretch")
    boxes = []
    with ThreadPoolExecutor(extractor.preprocess_workers) as pool:
        for start in range(0, len(images), batch_size):
            batch = torch.stack(list(pool.map(transform, images[start : start + batch_size])))
            with torch.inference_mode():
                fmap = extractor.model.first_map(extractor.to_device(batch)).float()
            boxes.append(saliency_boxes(fmap.cpu()))
    return np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)


def pooled_views(
    extractor: Extractor,
    images: Sequence[Image.Image],
    crop: str,
    views: Sequence[View],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    tilt_oversample: float = 1.0,
) -> list[dict[str, np.ndarray]]:
    """``pooled_features`` of several views (rotated, mirrored) of the same photos.

    Each batch is preprocessed once per rotation and all its views go through one forward
    pass: one larger batch costs less than several small ones, above all for one upload.
    A tilted view is drawn as ``PipelineConfig.tilt_oversample`` says (``rotate``).
    """
    transform = extractor.backbone.transforms(crop)
    angles = sorted({angle for angle, _ in views})
    side = tilt_side(extractor, crop, tilt_oversample)
    steepest = max((abs(angle) for angle in angles), default=0.0)
    outs: list[dict[str, list]] = [
        {"avg": [], "gem": [], "multi": [], "layout": [], "box": []} for _ in views
    ]
    chunks = [images[start : start + batch_size] for start in range(0, len(images), batch_size)]

    def turned(image: Image.Image) -> list[torch.Tensor]:
        # Shrunk and its backdrop colour found once for all the tilts; upright stays as it is.
        small, fill = rotation_source(image, steepest, side) if steepest else (image, None)
        return [transform(rotate(small, angle, side, fill) if angle else image) for angle in angles]

    def prepared(chunk: Sequence[Image.Image]) -> dict[float, torch.Tensor]:
        per_image = list(pool.map(turned, chunk))
        return {
            angle: torch.stack([views[i] for views in per_image]) for i, angle in enumerate(angles)
        }

    # PIL releases the GIL while resizing and rotating, so threads overlap preprocessing; and
    # the next batch is prepared while the model runs on this one.
    with ThreadPoolExecutor(extractor.preprocess_workers) as pool, ThreadPoolExecutor(1) as ahead:
        coming = ahead.submit(prepared, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            batches = coming.result()
            if i + 1 < len(chunks):
                coming = ahead.submit(prepared, chunks[i + 1])
            _pool_views(extractor, batches, views, outs)
    return [
        {name: np.concatenate(parts).astype(np.float32) for name, parts in out.items()}
        for out in outs
    ]


def _pool_views(
    extractor: Extractor, batches: dict[float, torch.Tensor], views: Sequence[View], outs: list
) -> None:
    batch = torch.cat(
        [batches[angle].flip(-1) if flip else batches[angle] for angle, flip in views]
    )
    with torch.inference_mode(), extractor._autocast():
        maps = [m.float() for m in extractor.model.feature_maps(extractor.to_device(batch))]
    n = batch.shape[0] // len(views)
    for i, ((_, flip), out) in enumerate(zip(views, outs, strict=True)):
        _pool_maps([m[i * n : (i + 1) * n] for m in maps], flip, out)


def _pool_maps(maps: list[torch.Tensor], flip: bool, out: dict) -> None:
    final = maps[-1]
    out["avg"].append(F.normalize(final.mean(dim=(2, 3)), dim=1).cpu().numpy())
    out["gem"].append(F.normalize(gem(final), dim=1).cpu().numpy())
    multi = torch.cat([F.normalize(gem(m), dim=1) for m in maps], dim=1)
    out["multi"].append(F.normalize(multi, dim=1).cpu().numpy())
    out["layout"].append(layout(maps[0]).cpu().numpy())
    out["box"].append(saliency_boxes(maps[0].cpu(), flip))


def rotate(
    image: Image.Image, degrees: float, side: int, fill: tuple[int, ...] | None = None
) -> Image.Image:
    """The photo turned by degrees (counter-clockwise), the corners filled with its border colour.

    The canvas grows to hold the whole photo, as a tilted phone photo frames a product; the
    fill is the median colour of the photo's border (its backdrop), not black.

    The turned photo is drawn with the canvas's shorter side ``side`` (a smaller photo at its
    own size). Turning costs per pixel drawn: at the size the backbone resizes to (its decode
    side), a 1200-pixel photo was shrunk and turned both ways in a fifth of the time it took
    at 512 pixels, as the pipeline drew it before (docs/evaluation.md). Both sides are even,
    so the backbone's centre crop cuts as much off either edge, and the mirrored photo turned
    the other way is exactly this one mirrored. ``fill`` given: the photo is already
    ``rotation_source``'s for this side, and that is its fill.

    ``side`` 0 draws as the pipeline did before 2026-12-03 (``tilt_oversample`` 0): PIL's
    rotate on its own canvas, the photo shrunk to LEGACY_TURN_SIDE pixels at most.
    """
    if not degrees:
        return image
    if fill is None:
        image, fill = rotation_source(image, degrees, side)
    if not side:
        return image.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    width, height = image.size
    turn = math.radians(degrees)
    cos, sin = math.cos(turn), math.sin(turn)
    canvas = (width * cos + height * abs(sin), width * abs(sin) + height * cos)
    scale = min(1.0, side / min(canvas))  # drawn pixels per pixel of the photo
    size = (2 * round(canvas[0] * scale / 2), 2 * round(canvas[1] * scale / 2))
    # From a drawn pixel back into the photo: about the two centres, turned back, unscaled.
    a, b, d, e = cos / scale, -sin / scale, sin / scale, cos / scale
    centre_x, centre_y = size[0] / 2, size[1] / 2
    matrix = (
        a, b, width / 2 - a * centre_x - b * centre_y,
        d, e, height / 2 - d * centre_x - e * centre_y,
    )  # fmt: skip
    return image.transform(
        size, Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC, fillcolor=fill
    )


def rotation_source(
    image: Image.Image, degrees: float, side: int
) -> tuple[Image.Image, tuple[int, ...]]:
    """The photo shrunk (smoothly: a resize, not the turn, does the shrinking) so that turned by
    degrees, either way, its canvas's shorter side is still at least ``side``; and its border
    colour. A photo seen at two tilts is shrunk once; a smaller one is kept as it is."""
    width, height = image.size
    if not side:  # as before 2026-12-03: the shorter side, unturned, LEGACY_TURN_SIDE at most
        scale = LEGACY_TURN_SIDE / min(width, height)
        if scale < 1:
            image = image.resize(
                (round(width * scale), round(height * scale)), Image.Resampling.BILINEAR
            )
        return image, border_colour(image)
    turn = math.radians(abs(degrees))
    cos, sin = math.cos(turn), math.sin(turn)
    scale = side / min(width * cos + height * sin, width * sin + height * cos)
    if scale < 1:
        image = shrink(image, (math.ceil(width * scale), math.ceil(height * scale)))
    return image, border_colour(image)


def tilt_side(extractor: Extractor, crop: str, oversample: float) -> int:
    """The shorter side a tilted view is drawn with (0: as before 2026-12-03, see ``rotate``)."""
    return round(extractor.backbone.decode_side(crop) * oversample)


def rotate_all(images: Sequence[Image.Image], degrees: float, side: int) -> Sequence[Image.Image]:
    """Every photo turned by degrees (the same list when degrees is 0)."""
    return [rotate(image, degrees, side) for image in images] if degrees else images


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """The median colour of a photo's outermost pixels (of a 32 x 32 thumbnail)."""
    small = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def gem(x: torch.Tensor, p: float = GEM_P) -> torch.Tensor:
    """Generalised-mean pooling over the spatial grid: between average (p=1) and max."""
    return x.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def layout(fmap: torch.Tensor, n: int = LAYOUT_GRID) -> torch.Tensor:
    """(batch, channels * n * n) unit vectors: GeM of n x n overlapping regions, in place.

    Unlike global pooling this keeps what lies where, which tells two photos of the same
    item from two alike items. Each region is L2-normalised; the grid is added to its mirror
    image, so a photo and its mirror get the same layout (and rotations of a few degrees
    or a loose framing move little between overlapping regions).
    """
    size = 1 / (n - (n - 1) * LAYOUT_OVERLAP)
    starts = [i * size * (1 - LAYOUT_OVERLAP) for i in range(n)]
    height, width = fmap.shape[2:]
    cubed = fmap.float().clamp(min=1e-6).pow(GEM_P)
    regions = []
    for top in starts:
        t0 = int(top * height)
        t1 = max(t0 + 1, round((top + size) * height))
        for left in starts:
            l0 = int(left * width)
            l1 = max(l0 + 1, round((left + size) * width))
            pooled = cubed[:, :, t0:t1, l0:l1].mean(dim=(2, 3)).pow(1.0 / GEM_P)
            regions.append(F.normalize(pooled, dim=1))
    grid = torch.stack(regions, dim=1).view(fmap.shape[0], n, n, -1)
    grid = grid + grid.flip(2)
    return F.normalize(grid.reshape(fmap.shape[0], -1), dim=1)


def saliency_boxes(fmap: torch.Tensor, flipped: bool = False) -> np.ndarray:
    """(n, 4) boxes (left, top, right, bottom as shares of the view) around the product.

    A floor or table looks alike all over, and it reaches the photo's border: cells whose
    features differ from the border's average are the product. The largest such region wins.
    """
    f = F.normalize(fmap.float(), dim=1)
    border = torch.cat([f[:, :, 0, :], f[:, :, -1, :], f[:, :, :, 0], f[:, :, :, -1]], dim=2)
    background = F.normalize(border.mean(dim=2), dim=1)[:, :, None, None]
    heat = 1 - (f * background).sum(dim=1, keepdim=True)
    heat = F.interpolate(heat, scale_factor=2, mode="bilinear")[:, 0]
    if flipped:
        heat = heat.flip(-1)
    boxes = []
    for grid in heat.numpy():
        mask = largest_component(grid > grid.mean() + 0.3 * (grid.max() - grid.mean()))
        rows, cols = np.nonzero(mask)
        h, w = grid.shape
        boxes.append([cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h])
    return np.asarray(boxes, np.float32)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected True region of a 2-d mask (the whole mask if it is empty)."""
    if not mask.any():
        return np.ones_like(mask)
    labels = np.zeros(mask.shape, np.int32)
    best, best_size, current = 0, 0, 0
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        current += 1
        size, stack = 0, [start]
        labels[start] = current
        while stack:
            r, c = stack.pop()
            size += 1
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                inside = 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1]
                if inside and mask[nr, nc] and not labels[nr, nc]:
                    labels[nr, nc] = current
                    stack.append((nr, nc))
        if size > best_size:
            best, best_size = current, size
    return labels == best


def crop_to_box(image: Image.Image, box: np.ndarray) -> Image.Image:
    """Cut a photo to a box of shares of its width and height, with a small margin."""
    width, height = image.size
    left, top, right, bottom = np.asarray(box, np.float64)
    left, top = max(0.0, left - BOX_MARGIN), max(0.0, top - BOX_MARGIN)
    right, bottom = min(1.0, right + BOX_MARGIN), min(1.0, bottom + BOX_MARGIN)
    if (right - left) * (bottom - top) < MIN_BOX_AREA:
        return image
    pixels = (left * width, top * height, right * width, bottom * height)
    return image.crop(tuple(round(v) for v in pixels))


def colour_histograms(images: Sequence[Image.Image]) -> np.ndarray:
    """Centre-weighted HSV histograms, square-rooted and unit length (Hellinger kernel).

    Photos are shrunk in threads (torch and PIL release the GIL): on a CPU the catalog path
    runs these after the network, while no other work is left for the cores.
    """
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        return l2n(np.asarray(list(pool.map(colour_histogram, images))))


def _centre_weight(side: int) -> np.ndarray:
    # The product is usually in the middle; the border is mostly floor or backdrop.
    yy, xx = np.mgrid[-1 : 1 : side * 1j, -1 : 1 : side * 1j]
    return np.exp(-(xx**2 + yy**2) / 0.5).ravel()


COLOUR_SIDE = 64
_COLOUR_WEIGHT = _centre_weight(COLOUR_SIDE)


def colour_histogram(image: Image.Image) -> np.ndarray:
    """One photo's ``colour_histograms`` row, before the unit length."""
    small = shrink(image.convert("RGB") if image.mode != "RGB" else image, (COLOUR_SIDE,) * 2)
    hsv = np.asarray(small.convert("HSV"), np.int32)
    bins = [hsv[..., i] * n // 256 for i, n in enumerate(COLOUR_BINS)]
    index = (bins[0] * COLOUR_BINS[1] + bins[1]) * COLOUR_BINS[2] + bins[2]
    hist = np.bincount(index.ravel(), _COLOUR_WEIGHT, minlength=int(np.prod(COLOUR_BINS)))
    return np.sqrt(hist / hist.sum())


def load_pipeline(
    config: PipelineConfig,
    *,
    weights_file: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    download: bool = True,
    cache: FeatureCache | None = None,
    compile: bool = False,
) -> Pipeline:
    """Load the configured backbones (once per process) into a pipeline."""
    extractors = [
        load_extractor(
            name,
            weights_file=weights_file if i == 0 else None,
            device=device,
            precision=precision,
            download=download,
            compile=compile,
        )
        for i, (name, _) in enumerate(config.backbones)
    ]
    return Pipeline(config, extractors, cache)
