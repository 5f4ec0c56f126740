"""Learned last steps, fitted on the catalog's own vectors: PCA whitening and a projection head.

Both are refitted whenever the index is rebuilt and saved beside that index version, so
catalog and query vectors always pass through the same fitted maps.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

HEAD_STEPS = 200
HEAD_LR = 0.01
HEAD_DECAY = 1e-4
HEAD_SCALE = 10.0  # unit inputs give small logits; scaled, the softmax can become confident
HELD_OUT = 0.15  # share of the catalog that decides when the head stops learning
WHITEN_SHRINK = 0.1  # share of the mean eigenvalue added before inverting (noisy tail)
# Whitening and the head are fitted on at most this many catalog vectors (a seeded sample):
# more adds nothing to a d x d covariance or a linear head, and keeps a 1M-product rebuild cheap.
FIT_SAMPLE = 50_000
# The head's 200 full-batch steps read every row twice a step; beyond this many rows the fit is
# bound by memory bandwidth (minutes at 50,000 x 1712) and a linear head learns nothing more.
HEAD_SAMPLE = 10_000


def l2n(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class PostProcessor:
    """Whitening and/or a projection head; with neither it returns vectors unchanged.

    A raw vector made of several parts (shape, layout, colour: ``Pipeline.parts``) has each
    part whitened on its own (``parts`` holds (dimension, share) rows and ``part_maps`` a
    (mean, whitening) pair or None per part); a single-part vector uses mean and whitening.
    """

    mean: np.ndarray | None = None
    whitening: np.ndarray | None = None
    head: np.ndarray | None = None
    head_weight: float = 0.0
    parts: np.ndarray | None = None
    part_maps: list[tuple[np.ndarray, np.ndarray] | None] = field(default_factory=list)

    @property
    def is_identity(self) -> bool:
        """True when there is nothing learned to apply."""
        return self.whitening is None and self.head is None and self.parts is None

    def output_dim(self, dim: int) -> int:
        """Dimension of the vectors this produces from dim-dimensional inputs."""
        if self.parts is not None:
            base = sum(
                int(d) if m is None else m[1].shape[1]
                for (d, _), m in zip(self.parts, self.part_maps, strict=True)
            )
        else:
            base = self.whitening.shape[1] if self.whitening is not None else dim
        return base + (self.head.shape[1] if self.head is not None else 0)

    def _base(self, x: np.ndarray) -> np.ndarray:
        if self.parts is None:
            return x if self.whitening is None else l2n((x - self.mean) @ self.whitening)
        pieces, start = [], 0
        for (dim, share), maps in zip(self.parts, self.part_maps, strict=True):
            part = x[:, start : start + int(dim)]
            start += int(dim)
            part = l2n(part if maps is None else (part - maps[0]) @ maps[1])
            pieces.append(np.sqrt(share) * part)
        return l2n(np.hstack(pieces))

    def apply(self, x: np.ndarray, head_weight: float | None = None) -> np.ndarray:
        """Map raw pipeline vectors (n, d) to searchable unit vectors.

        head_weight overrides the fitted share of the head for these vectors: a query with 0
        is ranked by the base part alone (the same product, not only the same category).
        """
        x = np.atleast_2d(np.asarray(x, np.float32))
        base = self._base(x)
        if self.head is None:
            return base
        # Weighted concatenation: cosine = (1 - w) * base cosine + w * head cosine.
        projected = l2n(x @ self.head)
        w = self.head_weight
        if head_weight is None or head_weight == w:
            return l2n(np.hstack([np.sqrt(1 - w) * base, np.sqrt(w) * projected]))
        # A query with its own head share, scaled so that a catalog vector equal to it
        # still scores 1: scores stay cosines the shopper can read as "% alike".
        v = head_weight
        scale = np.sqrt((1 - v) * (1 - w)) + np.sqrt(v * w)
        query = np.hstack([np.sqrt(1 - v) * base, np.sqrt(v) * projected])
        return (l2n(query) / scale).astype(np.float32)

    def to_bytes(self) -> bytes:
        """Serialise as an .npz file's bytes."""
        arrays = {"head_weight": np.float32(self.head_weight)}
        for name in ("mean", "whitening", "head", "parts"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        for i, maps in enumerate(self.part_maps):
            if maps is not None:
                arrays[f"part{i}_mean"], arrays[f"part{i}_whitening"] = maps
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PostProcessor:
        """Read what to_bytes wrote."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {
                name: npz[name] for name in ("mean", "whitening", "head", "parts") if name in npz
            }
            n_parts = len(arrays["parts"]) if "parts" in arrays else 0
            part_maps = [
                (npz[f"part{i}_mean"], npz[f"part{i}_whitening"])
                if f"part{i}_mean" in npz
                else None
                for i in range(n_parts)
            ]
            return cls(**arrays, part_maps=part_maps, head_weight=float(npz["head_weight"]))


def fit_postprocessor(
    xb: np.ndarray,
    labels: list[str] | None = None,
    *,
    whiten_dims: int = 0,
    head_weight: float = 0.0,
    seed: int = 0,
    parts: list[tuple[int, float, bool]] | None = None,
) -> PostProcessor:
    """Fit whitening (whiten_dims > 0) and a head (head_weight > 0) on catalog vectors.

    parts (``Pipeline.parts``: dimension, share, whitened) splits a raw vector of several
    components; each marked one is whitened on its own, the others only renormalised.
    """
    post = PostProcessor()
    if len(xb) > FIT_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(len(xb), FIT_SAMPLE, replace=False))
        xb = np.asarray(xb)[rows]
        labels = [labels[row] for row in rows] if labels is not None else None
    if whiten_dims > 0 and len(xb) > 2 and parts and len(parts) > 1:
        post.parts = np.array([[dim, share] for dim, share, _ in parts], np.float32)
        start = 0
        for dim, _, whiten in parts:
            part = xb[:, start : start + dim]
            start += dim
            post.part_maps.append(fit_whitening(part, whiten_dims) if whiten else None)
    elif whiten_dims > 0 and len(xb) > 2:
        post.mean, post.whitening = fit_whitening(xb, whiten_dims)
    if head_weight > 0 and labels is not None and len(set(labels)) >= 2:
        post.head = fit_head(xb, labels, seed=seed)
        post.head_weight = head_weight
    elif head_weight > 0:
        logger.info("No projection head: it needs at least two catalog categories.")
    return post


def fit_whitening(xb: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA whitening (mean, d x dims matrix) with shrinkage of the small eigenvalues.

    The eigenvectors come from the d x d covariance, not an SVD of the n x d catalog: the same
    directions, at a cost that grows with n only through one matrix product.
    """
    xb = np.asarray(xb, np.float64)
    mean = xb.mean(axis=0)
    centred = xb - mean
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / max(len(xb) - 1, 1))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = np.clip(eigenvalues[order], 0.0, None), vectors[:, order]
    dims = min(dims, len(xb) - 1, xb.shape[1])
    shrunk = eigenvalues[:dims] + WHITEN_SHRINK * eigenvalues[:dims].mean()
    return mean.astype(np.float32), (vectors[:, :dims] / np.sqrt(shrunk)).astype(np.float32)


def fit_head(xb: np.ndarray, labels: list[str], *, seed: int = 0) -> np.ndarray:
    """A linear map to one score per category, trained as a softmax classifier.

    The head's vector (the category scores, unit length) says which categories a photo
    looks like. A share of the catalog is held out and the step with the lowest held-out
    loss is kept, so the head learns the categories rather than the catalog's photos.
    """
    classes = sorted(set(labels))
    if len(xb) > HEAD_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(len(xb), HEAD_SAMPLE, replace=False))
        xb, labels = np.asarray(xb)[rows], [labels[row] for row in rows]
    y = torch.tensor([classes.index(label) for label in labels])
    x = torch.from_numpy(np.array(xb, np.float32))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    n_held = int(len(x) * HELD_OUT) if len(x) >= 50 else 0
    held, train = (order[:n_held], order[n_held:]) if n_held else (order, order)
    projection = torch.nn.Parameter(torch.zeros(x.shape[1], len(classes)))
    optimiser = torch.optim.Adam([projection], lr=HEAD_LR)

    # Gathered once: indexing a large catalog afresh at every step costs more than the steps.
    x_train, y_train, x_held, y_held = x[train], y[train], x[held], y[held]

    def loss_of(rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(HEAD_SCALE * rows @ projection, labels)

    best, best_loss = projection.detach().clone(), float("inf")
    with torch.enable_grad():
        for _ in range(HEAD_STEPS):
            loss = loss_of(x_train, y_train) + HEAD_DECAY * projection.pow(2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                held_loss = loss_of(x_held, y_held).item()
            if held_loss < best_loss:
                best, best_loss = projection.detach().clone(), held_loss
    logger.info("Projection head: %s categories, held-out loss %.3f", len(classes), best_loss)
    return best.numpy().copy()
