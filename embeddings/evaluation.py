"""Measure retrieval quality with exactly the shop's catalog-side and query-side pipelines.

Python entry point::

    from embeddings.evaluation import evaluate
    from embeddings.pipeline import PipelineConfig, load_pipeline

    pipeline = load_pipeline(PipelineConfig())
    report = evaluate(pipeline, gallery_images, gallery_labels, query_images, query_labels)

Labelled queries are embedded like product photos (a shopper clicking a product) and scored
by label: precision@1/5/10 and mAP@10. Shopper queries are synthetic phone photos of gallery
photos, embedded like uploads; Recall@1/@10 says how often the original product is found.
"""

from __future__ import annotations

import csv
import hashlib
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from embeddings import metrics
from embeddings.pipeline import Pipeline
from embeddings.postprocess import PostProcessor, fit_postprocessor
from embeddings.shopper import shopper_photos

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
KS = (1, 5, 10)
CHUNK = 256


def evaluate(
    pipeline: Pipeline,
    gallery: Sequence[Image.Image],
    gallery_labels: Sequence[str],
    queries: Sequence[Image.Image] | None = None,
    query_labels: Sequence[str] | None = None,
    *,
    shopper: bool = True,
    shopper_limit: int | None = None,
    seed: int = 0,
) -> dict:
    """Precision@k and mAP@10 by label, and shopper-photo Recall@1/@10, as a JSON-ready dict."""
    xb_raw = pipeline.embed_catalog(gallery)
    # Learned parts are fitted on the catalog alone, as when the shop rebuilds its index.
    post = fit_postprocessor(
        xb_raw,
        list(gallery_labels),
        whiten_dims=pipeline.config.whiten_dims,
        head_weight=pipeline.config.head_weight,
        seed=seed,
        parts=pipeline.parts,
    )
    xb = post.apply(xb_raw)
    report = {
        "model_id": pipeline.model_id,
        "config": pipeline.config.key(),
        "gallery": len(gallery),
    }
    report.update(_label_metrics(pipeline, post, xb, gallery_labels, queries, query_labels))
    if shopper:
        report["shopper"] = _shopper_metrics(pipeline, post, xb, gallery, shopper_limit, seed)
    return report


def _label_metrics(pipeline, post, xb, gallery_labels, queries, query_labels) -> dict:
    gallery_labels = np.asarray(gallery_labels)
    if queries is None:
        # Leave one out: every catalog photo queries all the others.
        xq, query_labels, exclude_self = xb, gallery_labels, True
    else:
        xq = post.apply(pipeline.embed_catalog(queries))
        query_labels, exclude_self = np.asarray(query_labels), False
    I = top_k(xq, xb, max(KS), exclude_self=exclude_self)
    rel = metrics.relevance(gallery_labels, query_labels, I)
    counts = {label: int((gallery_labels == label).sum()) for label in set(query_labels)}
    n_relevant = np.array([counts[label] - int(exclude_self) for label in query_labels])
    out = {"queries": len(query_labels)}
    for k in KS:
        out[f"precision@{k}"] = round(metrics.precision_at_k(rel, k), 4)
    out["map@10"] = round(metrics.mean_average_precision_at_k(rel, n_relevant, 10), 4)
    return out


def _shopper_metrics(pipeline, post, xb, gallery, limit, seed) -> dict:
    chosen = shopper_sample(len(gallery), limit, seed)
    photos = _shopper_photos(gallery, chosen, seed)
    xq = post.apply(pipeline.embed_query(photos), pipeline.config.query_head_weight)
    I = top_k(xq, xb, 10)
    return {
        "queries": len(chosen),
        "seed": seed,
        "recall@1": round(metrics.recall_at_k(I, chosen, 1), 4),
        "recall@10": round(metrics.recall_at_k(I, chosen, 10), 4),
    }


_shopper_memo: dict[tuple, tuple[Sequence[Image.Image], list[Image.Image]]] = {}


def _shopper_photos(gallery: Sequence[Image.Image], chosen: np.ndarray, seed: int) -> list:
    # Ablations score many variants on one gallery: make its shopper photos once.
    key = (id(gallery), seed, chosen.tobytes())
    if key not in _shopper_memo or _shopper_memo[key][0] is not gallery:
        if len(_shopper_memo) >= 4:
            _shopper_memo.clear()
        _shopper_memo[key] = (gallery, shopper_photos([gallery[i] for i in chosen], seed=seed))
    return _shopper_memo[key][1]


def shopper_sample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Which gallery photos get a shopper photo: all, or a seeded sample of ``limit``."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def top_k(xq: np.ndarray, xb: np.ndarray, k: int, *, exclude_self: bool = False) -> np.ndarray:
    """Exact inner-product search: (n_queries, k) gallery positions, best first."""
    scores = xq @ xb.T
    if exclude_self:
        np.fill_diagonal(scores, -np.inf)
    k = min(k, xb.shape[0] - int(exclude_self))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def throughput(
    embed: Callable[[list[Image.Image]], np.ndarray], images: list[Image.Image]
) -> float:
    """Images per second of an embedding function, after one warm-up batch."""
    embed(images[:4])
    start = time.perf_counter()
    embed(images)
    return len(images) / (time.perf_counter() - start)


# ---------------------------------------------------------------------------- data sets


def load_folders(roots: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Image paths and labels from folders holding one sub-folder per class."""
    paths, labels = [], []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder of class folders.")
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    paths.append(path)
                    labels.append(class_dir.name)
    return paths, labels


def load_csv(
    csv_path: str | Path,
    *,
    image_column: str = "image",
    label_column: str = "label",
    image_root: str | Path | None = None,
) -> tuple[list[Path], list[str]]:
    """Image paths and labels from a CSV; relative paths are under image_root or images/."""
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root else csv_path.parent / "images"
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column in (image_column, label_column):
        if rows and column not in rows[0]:
            raise ValueError(f"{csv_path} has no column {column!r}; it has {', '.join(rows[0])}.")
    return [root / row[image_column] for row in rows], [row[label_column] for row in rows]


def open_images(paths: Sequence[Path]) -> list[Image.Image]:
    """Decode image files fully into memory."""
    images = []
    for path in tqdm(paths, desc="Reading photos", unit="img", leave=False):
        with Image.open(path) as image:
            image.load()
            images.append(image.copy())
    return images


# ---------------------------------------------------------------------------- feature cache


class DiskFeatureCache:
    """Pooled backbone features kept under a folder, keyed by tag and image content.

    Ablations re-use one forward pass for every pooling and post-processing variant.
    """

    def __init__(self, directory: str | Path, progress: bool = True) -> None:
        self.directory = Path(directory)
        self.progress = progress
        self._memory: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        self._digests: dict[int, tuple[weakref.ref, str]] = {}

    def __call__(self, tag: str, images: Sequence[Image.Image], compute) -> dict:
        store = self._load(tag)
        digests = [self._digest(image) for image in images]
        missing = sorted({d: i for i, d in enumerate(digests) if d not in store}.values())
        bar = tqdm(
            total=len(missing), desc=tag, unit="img", disable=not self.progress or not missing
        )
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            computed = compute([images[i] for i in chunk])
            self._save(tag, [digests[i] for i in chunk], computed)
            for j, i in enumerate(chunk):
                store[digests[i]] = {name: values[j] for name, values in computed.items()}
            bar.update(len(chunk))
        bar.close()
        names = store[digests[0]].keys() if digests else ()
        return {name: np.stack([store[d][name] for d in digests]) for name in names}

    def _digest(self, image: Image.Image) -> str:
        # Hashing megapixels is not free: remember each live image's digest. A weak reference,
        # so that passing views (tilted catalog photos) are freed once embedded.
        known = self._digests.get(id(image))
        if known is None or known[0]() is not image:
            key = id(image)
            forget = lambda _, key=key: self._digests.pop(key, None)  # noqa: E731
            known = self._digests[key] = (weakref.ref(image, forget), image_digest(image))
        return known[1]

    def _folder(self, tag: str) -> Path:
        return self.directory / hashlib.sha256(tag.encode()).hexdigest()[:16]

    def _load(self, tag: str) -> dict[str, dict[str, np.ndarray]]:
        if tag not in self._memory:
            store: dict[str, dict[str, np.ndarray]] = {}
            for path in sorted(self._folder(tag).glob("*.npz")):
                with np.load(path) as npz:
                    arrays = {name: npz[name] for name in npz.files if name != "digests"}
                    for j, digest in enumerate(npz["digests"]):
                        store[str(digest)] = {name: values[j] for name, values in arrays.items()}
            self._memory[tag] = store
        return self._memory[tag]

    def _save(self, tag: str, digests: list[str], computed: dict[str, np.ndarray]) -> None:
        folder = self._folder(tag)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tag.txt").write_text(tag)
        tmp = folder / f".{uuid.uuid4().hex}.tmp.npz"
        np.savez(tmp, digests=np.array(digests), **computed)
        tmp.replace(folder / f"{uuid.uuid4().hex}.npz")


def image_digest(image: Image.Image) -> str:
    """Content hash of decoded pixels (mode and size included)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


__all__ = [
    "DiskFeatureCache",
    "PostProcessor",
    "evaluate",
    "load_csv",
    "load_folders",
    "open_images",
    "throughput",
    "top_k",
]
