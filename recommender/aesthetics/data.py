"""Reading rated photo sets and caching their features on disk (no Django)."""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from recommender.aesthetics.features import GLOBAL_DIM, LOCAL_DIM, PATCHES, PhotoFeatures

logger = logging.getLogger(__name__)

IMAGE_COLUMNS = ("image", "filename", "file", "path")
SCORE_COLUMNS = ("mos", "score", "rating")


class RatingsError(ValueError):
    """A ratings file or its photos cannot be used (the message says what to fix)."""


@dataclass(frozen=True)
class RatedPhotos:
    paths: list[Path]
    scores: np.ndarray


def read_ratings(images_dir: Path, scores_csv: Path) -> RatedPhotos:
    """Photo paths and their 0-100 scores from a CSV with an image and a score column."""
    if not Path(images_dir).is_dir():
        raise RatingsError(f"The images folder {images_dir} does not exist.")
    try:
        with open(scores_csv, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RatingsError(f"Cannot read the scores file {scores_csv}: {exc}") from exc
    image_col = _column(columns, reader.fieldnames, IMAGE_COLUMNS, "image", scores_csv)
    score_col = _column(columns, reader.fieldnames, SCORE_COLUMNS, "score", scores_csv)
    paths, scores = [], []
    for line, row in enumerate(rows, start=2):
        try:
            scores.append(float(row[score_col]))
        except (TypeError, ValueError):
            raise RatingsError(
                f"{scores_csv}, line {line}: score {row[score_col]!r} is not a number."
            ) from None
        path = Path(images_dir) / (row[image_col] or "").strip()
        if not path.is_file():
            raise RatingsError(f"{scores_csv}, line {line}: there is no image file {path}.")
        paths.append(path)
    if len(paths) < 2:
        raise RatingsError(f"{scores_csv} rates fewer than two photos: nothing to compare.")
    return RatedPhotos(paths, np.array(scores, dtype=np.float32))


def _column(columns, fieldnames, names, what, scores_csv) -> str:
    for name in names:
        if name in columns:
            return fieldnames[columns.index(name)]
    raise RatingsError(
        f"{scores_csv} has no {what} column: it needs one of {', '.join(names)} "
        f"(it has: {', '.join(fieldnames or []) or 'no header'})."
    )


def open_photo(path: Path) -> Image.Image:
    """Open a photo fully, with an error that names the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise RatingsError(f"The image {path} cannot be read: {exc}") from exc


def held_out(names: Sequence[str], fraction: float = 0.2) -> np.ndarray:
    """Indices of the validation part: chosen by a hash of the name, stable across runs."""
    buckets = [int(hashlib.sha1(n.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for n in names]
    return np.array([i for i, b in enumerate(buckets) if b < fraction], dtype=np.int64)


def file_key(path: Path, extra: str = "") -> str:
    """Cache key of a photo file: name, size, modification time (and a variant)."""
    path = Path(path).resolve()
    stat = path.stat()
    return hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{extra}".encode()).hexdigest()


def cached_features(
    keys: list[str],
    make_image: Callable[[int], Image.Image],
    cache_file: Path,
    features: PhotoFeatures,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features for each key, computing only those missing from the cache file (npz)."""
    cache = _read_cache(cache_file, features.weights_id)
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if progress:
        progress(len(keys) - len(missing))
    for start in range(0, len(missing), 128):
        chunk = missing[start : start + 128]
        xg, xl = features([make_image(i) for i in chunk], progress)
        for n, i in enumerate(chunk):
            cache[keys[i]] = (xg[n], xl[n])
        _write_cache(cache_file, features.weights_id, cache)
    if not keys:
        return np.zeros((0, GLOBAL_DIM), np.float32), np.zeros((0, PATCHES, LOCAL_DIM), np.float32)
    xg = np.stack([cache[k][0] for k in keys]).astype(np.float32)
    xl = np.stack([cache[k][1] for k in keys]).astype(np.float32)
    return xg, xl


def _read_cache(path: Path, weights_id: str) -> dict:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        if str(data["weights_id"]) != weights_id:
            return {}
        return {k: (g, l) for k, g, l in zip(data["keys"], data["xg"], data["xl"], strict=True)}


def _write_cache(path: Path, weights_id: str, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(cache)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        weights_id=np.array(weights_id),
        keys=np.array(keys),
        xg=np.stack([cache[k][0] for k in keys]).astype(np.float16),
        xl=np.stack([cache[k][1] for k in keys]).astype(np.float16),
    )
    tmp.replace(path)
