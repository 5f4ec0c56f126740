"""The on-disk vector index: build, search, save atomically, load safely, hot-reload.

Plain Python + numpy + faiss on purpose (no Django), so it can be used and tested anywhere.

Vectors are L2-normalised float32, so inner product equals cosine similarity.
The index is exact (flat), HNSW or IVF, chosen by catalog size (``recommender.index_kinds``);
every kind searches over product ids, and the manifest records the kind and its parameters.

Serving processes map the index file into memory (``faiss.IO_FLAG_MMAP_IFC``) instead of
reading it: the pages live once in the OS page cache and are shared by every web process.
Integrity: the writer hashes the bytes it writes (SHA-256, in the manifest); a reader checks
the file's size and streams the file through SHA-256 before mapping it, so no second copy of
the index is held in memory (see docs/benchmarks.md for what a reload costs at 1M products).

Layout of an index directory::

    manifest.json        # written LAST; points to the current index file
    index-000007.faiss   # current version
    index-000006.faiss   # previous version, kept for readers that may still be loading it
    post-000007.npz      # optional: learned post-processing fitted with that version
    .writer.lock         # flock'ed by the single writer

Readers only ever follow ``manifest.json``, and every file is written to a temp file,
fsync'ed and renamed into place, so a reader never sees a partial file.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from recommender import index_kinds
from recommender.index_kinds import IndexSpec

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".writer.lock"
METRIC = "inner_product"
_INDEX_FILE_RE = re.compile(r"^index-(\d+)\.faiss$")
_POST_FILE_RE = re.compile(r"^post-(\d+)\.npz$")
_REBUILD_HINT = "run `python manage.py demo` or rebuild the index"


class IndexNotFound(Exception):
    """There is no index yet in the directory."""


class IndexCorrupt(Exception):
    """The index or its manifest is unreadable or inconsistent."""


class IndexMismatch(Exception):
    """The index was built for another model or dimension than the caller expects."""


class WriterLockTimeout(TimeoutError):
    """Another writer held the index lock for longer than the timeout."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records about the current index file."""

    version: int
    model_id: str
    weights_id: str
    dim: int
    count: int
    checksum: str
    index_file: str
    created_at: str
    metric: str = METRIC
    # Learned post-processing (whitening, projection head) fitted with this version, if any.
    postprocessor: str = ""
    postprocessor_checksum: str = ""
    # Manifests written before index kinds existed describe exact (flat) indexes.
    index_kind: str = "flat"
    index_params: dict = field(default_factory=dict)
    size: int = -1  # bytes of the index file; -1 in manifests written before it was recorded

    @property
    def spec(self) -> IndexSpec:
        """The kind and parameters of the index this manifest describes."""
        return IndexSpec(self.index_kind, dict(self.index_params))

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "Manifest":
        """Build a manifest from parsed JSON, raising ValueError if it is malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"manifest must be a JSON object, got {type(data).__name__}")
        kwargs = {}
        for item in fields(cls):
            if item.name not in data:
                if item.name in _OPTIONAL_FIELDS:
                    continue
                raise ValueError(f"manifest lacks {item.name!r}")
            value = data[item.name]
            # bool is an int subclass; a manifest saying `"version": true` is still broken.
            if not isinstance(value, item.type) or isinstance(value, bool):
                raise ValueError(f"manifest field {item.name!r} has a bad value: {value!r}")
            kwargs[item.name] = value
        if "index_params" in kwargs:
            kwargs["index_params"] = index_kinds.as_params(kwargs["index_params"])
        manifest = cls(**kwargs)
        if manifest.index_kind not in index_kinds.KINDS:
            raise ValueError(f"manifest index_kind is unknown: {manifest.index_kind!r}")
        # The file name comes from disk; refuse anything that could point outside the directory.
        if not _INDEX_FILE_RE.match(manifest.index_file):
            raise ValueError(
                f"manifest index_file is not an index file name: {manifest.index_file!r}"
            )
        if manifest.postprocessor and not _POST_FILE_RE.match(manifest.postprocessor):
            raise ValueError(
                f"manifest postprocessor is not a post file name: {manifest.postprocessor!r}"
            )
        return manifest


_OPTIONAL_FIELDS = (
    "metric",
    "postprocessor",
    "postprocessor_checksum",
    "index_kind",
    "index_params",
    "size",
)


# ---------------------------------------------------------------------------- build and search


def build_index(
    ids: np.ndarray,
    xb: np.ndarray,
    dim: int | None = None,
    *,
    kind: str = "auto",
    params: dict[str, int] | None = None,
) -> faiss.Index:
    """Build an inner-product index of the rows of ``xb`` under the product ``ids``.

    ``kind`` is ``auto`` (chosen by catalog size), ``flat`` (exact), ``hnsw`` or ``ivf``;
    ``params`` overrides the kind's parameters (e.g. ``{"ef_search": 128}``, 0 = default).
    """
    ids = _as_ids(ids)
    xb = _as_vectors(xb, dim)
    if xb.shape[0] != ids.shape[0]:
        raise ValueError(f"got {ids.shape[0]} ids for {xb.shape[0]} vectors")
    spec = index_spec(len(ids), kind, params)
    return index_kinds.build(spec, ids, xb, xb.shape[1])


def index_spec(n: int, kind: str = "auto", params: dict[str, int] | None = None) -> IndexSpec:
    """The kind and parameters a catalog of ``n`` products gets when ``kind`` is asked for."""
    return index_kinds.default_spec(index_kinds.choose_kind(n, kind), n, params)


def update_index(
    index: faiss.Index, remove: np.ndarray, ids: np.ndarray, xb: np.ndarray
) -> faiss.Index:
    """Remove ``remove`` ids and add ``xb`` under ``ids``; returns the index to save.

    Flat and IVF indexes change in place; an HNSW index that loses entries is rebuilt from
    the vectors it holds (faiss cannot remove from the graph), and the new one is returned.
    """
    ids = _as_ids(ids)
    xb = _as_vectors(xb, index.d)
    if xb.shape[0] != ids.shape[0]:
        raise ValueError(f"got {ids.shape[0]} ids for {xb.shape[0]} vectors")
    spec = index_kinds.spec_of(index)
    return index_kinds.update(index, spec, np.asarray(remove, np.int64), ids, xb)


def restructure_index(
    index: faiss.Index, kind: str = "auto", params: dict[str, int] | None = None
) -> faiss.Index | None:
    """The index rebuilt as the kind its size now calls for, or None when it is right as it is.

    A catalog that grows past a threshold becomes approximate, one that shrinks becomes exact,
    and IVF lists trained on a much smaller catalog are retrained.
    """
    spec = index_kinds.spec_of(index)
    if not index_kinds.needs_restructure(spec, index.ntotal, kind):
        return None
    ids, xb = index_kinds.vectors_of(index)
    return index_kinds.build(index_spec(len(ids), kind, params), ids, xb, index.d)


def indexed_ids(index: faiss.Index) -> np.ndarray:
    """The product ids held by an index of any kind."""
    return index_kinds.ids_of(index)


def search(index: faiss.Index, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (D, I) for the ``k`` nearest neighbours of each query row in ``xq``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    xq = np.atleast_2d(np.asarray(xq))
    if xq.ndim != 2 or xq.shape[1] != index.d:
        raise ValueError(f"queries must have shape (n, {index.d}), got {xq.shape}")
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    if not np.isfinite(xq).all():
        raise ValueError("queries contain NaN or infinite values")
    # Clamping k to ntotal means faiss never pads rows with -1 ids and -inf scores.
    k = min(int(k), index.ntotal)
    if k == 0:
        return np.empty((len(xq), 0), np.float32), np.empty((len(xq), 0), np.int64)
    params = index_kinds.search_params(index, k)
    with _one_thread_for(len(xq)):
        if params is None:
            return index.search(xq, k)
        return index.search(xq, k, params=params)


@contextlib.contextmanager
def _one_thread_for(nq: int) -> Iterator[None]:
    """A single query runs in the calling thread alone.

    faiss splits its work by query, so one query keeps one thread busy however many it has;
    the others only wait at OpenMP's barrier, which on a loaded machine (web processes side
    by side) cost 5-8 ms per search against 0.3 ms alone (5,000 x 592, flat).
    """
    if nq > 1:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def reconstruct_vectors(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """Return the stored vectors of the given product ids, one row per id."""
    ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
    if len(ids) == 0:
        return np.empty((0, index.d), np.float32)
    # Check up front: faiss only says "key not found" without naming the id.
    missing = np.setdiff1d(ids, indexed_ids(index))
    if len(missing):
        raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
    return index.reconstruct_batch(ids)


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """Validate product ids and return them as a 1-d int64 array."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-d, got shape {ids.shape}")
    if len(ids) and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    # -1 is faiss's "no result" marker and huge uint64s would wrap: keep ids plainly positive.
    if len(ids) and (ids.min() < 0 or ids.max() > np.iinfo(np.int64).max):
        raise ValueError("ids must be non-negative and fit in int64")
    ids = ids.astype(np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"duplicate ids: {unique[counts > 1][:10].tolist()}")
    return ids


def _as_vectors(xb: np.ndarray, dim: int | None) -> np.ndarray:
    """Validate vectors and return them as a C-contiguous float32 (n, d) array."""
    xb = np.asarray(xb)
    if xb.size == 0:
        # An empty catalog has no rows to infer d from, so the caller must say it.
        if dim is None or dim < 1:
            raise ValueError("an empty index needs an explicit positive dim")
        return np.empty((0, dim), np.float32)
    if xb.ndim != 2:
        raise ValueError(f"vectors must be 2-d (n, d), got shape {xb.shape}")
    if dim is not None and xb.shape[1] != dim:
        raise ValueError(f"vectors have dim {xb.shape[1]}, expected {dim}")
    if not (np.issubdtype(xb.dtype, np.floating) or np.issubdtype(xb.dtype, np.integer)):
        raise TypeError(f"vectors must be real numbers, got {xb.dtype}")
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    # Checked after the cast: float64 values too big for float32 become inf.
    if not np.isfinite(xb).all():
        raise ValueError("vectors contain NaN or infinite values")
    return xb


# ---------------------------------------------------------------------------- save and load


def save_index(
    index: faiss.Index,
    directory: PathLike,
    *,
    model_id: str,
    weights_id: str,
    postprocessor: bytes | None = None,
) -> Manifest:
    """Write ``index`` as the next version in ``directory``; call it under ``writer_lock``."""
    try:
        spec = index_kinds.spec_of(index)
    except TypeError as exc:
        raise TypeError(f"expected an index from build_index: {exc}") from exc
    if not model_id or not weights_id:
        raise ValueError("model_id and weights_id must be non-empty")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    previous = _previous_manifest(directory)
    version = _next_version(directory, previous)
    data = faiss.serialize_index(index).tobytes()
    manifest = Manifest(
        version=version,
        model_id=model_id,
        weights_id=weights_id,
        dim=index.d,
        count=index.ntotal,
        checksum=hashlib.sha256(data).hexdigest(),
        index_file=_index_file_name(version),
        created_at=datetime.now(UTC).isoformat(),
        postprocessor=f"post-{version:06d}.npz" if postprocessor is not None else "",
        postprocessor_checksum=hashlib.sha256(postprocessor).hexdigest() if postprocessor else "",
        index_kind=spec.kind,
        index_params=spec.params,
        size=len(data),
    )
    if postprocessor is not None:
        _write_atomic(directory / manifest.postprocessor, postprocessor)
    _write_atomic(directory / manifest.index_file, data)
    # The manifest goes last, so it never points to a file that is not fully on disk.
    _write_atomic(directory / MANIFEST_NAME, _manifest_bytes(manifest))
    kept = [manifest] + ([previous] if previous else [])
    _prune(directory, keep={name for m in kept for name in (m.index_file, m.postprocessor)})
    logger.info("saved index version %s (%s vectors) in %s", version, manifest.count, directory)
    return manifest


def read_manifest(directory: PathLike) -> Manifest | None:
    """Return the directory's manifest, or None if there is none yet."""
    path = Path(directory) / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Manifest.from_dict(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"{path} is not a valid manifest ({exc}); {_REBUILD_HINT}") from exc


def load_index(
    directory: PathLike,
    *,
    expected_model_id: str | None = None,
    expected_dim: int | None = None,
    mmap: bool = False,
) -> tuple[faiss.Index, Manifest]:
    """Load the current index after checking it against its manifest and the caller's model.

    ``mmap=True`` maps the file read-only instead of reading it (for serving processes: the
    pages are shared between processes); the result cannot be changed. Writers load with
    ``mmap=False``.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise IndexNotFound(f"no index in {directory}; {_REBUILD_HINT}")
    _check_expected(manifest, expected_model_id, expected_dim)
    path = directory / manifest.index_file
    index = _read_mapped(path, manifest) if mmap else _read_whole(path, manifest)
    _check_consistent(index, manifest, path)
    index_kinds.set_search_params(index, manifest.spec)
    return index, manifest


def _read_whole(path: Path, manifest: Manifest) -> faiss.Index:
    """Read the file into memory, check it and deserialize the very bytes that were checked."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexCorrupt(f"manifest points to {path}, which cannot be read ({exc})") from exc
    _check_checksum(hashlib.sha256(data).hexdigest(), path, manifest)
    return _deserialize(data, path)


def _read_mapped(path: Path, manifest: Manifest) -> faiss.Index:
    """Check the file by size and a streamed checksum, then map it read-only.

    Index files are never changed after their rename (a new version is a new file), so the
    bytes hashed are the bytes mapped.
    """
    try:
        size = path.stat().st_size
        if manifest.size >= 0 and size != manifest.size:
            raise IndexCorrupt(
                f"{path} has {size} bytes but the manifest says {manifest.size} "
                f"(truncated or replaced file); {_REBUILD_HINT}"
            )
        with open(path, "rb") as f:
            checksum = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise IndexCorrupt(f"manifest points to {path}, which cannot be read ({exc})") from exc
    _check_checksum(checksum, path, manifest)
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        raise IndexCorrupt(f"faiss cannot read {path}: {exc}; {_REBUILD_HINT}") from exc
    return _checked_kind(index, path)


def _check_checksum(checksum: str, path: Path, manifest: Manifest) -> None:
    if checksum != manifest.checksum:
        raise IndexCorrupt(
            f"{path} checksum {checksum[:12]}… does not match the manifest's "
            f"{manifest.checksum[:12]}… (corrupt or truncated file); {_REBUILD_HINT}"
        )


def read_postprocessor(directory: PathLike, manifest: Manifest) -> bytes | None:
    """The post-processing bytes saved with this index version, checked; None if it has none."""
    if not manifest.postprocessor:
        return None
    path = Path(directory) / manifest.postprocessor
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexCorrupt(f"manifest points to {path}, which cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != manifest.postprocessor_checksum:
        raise IndexCorrupt(f"{path} does not match its checksum in the manifest; {_REBUILD_HINT}")
    return data


def _check_expected(manifest: Manifest, model_id: str | None, dim: int | None) -> None:
    """Refuse an index built for another embedding model than the caller's."""
    if model_id is not None and manifest.model_id != model_id:
        raise IndexMismatch(
            f"index was built with model {manifest.model_id!r} but the app uses {model_id!r}; "
            "rebuild the index (reindex the catalog) with the current model"
        )
    if dim is not None and manifest.dim != dim:
        raise IndexMismatch(
            f"index has dim {manifest.dim} but the app expects dim {dim}; "
            "rebuild the index (reindex the catalog) with the current model"
        )


def _deserialize(data: bytes, path: Path) -> faiss.Index:
    """Turn verified bytes into a faiss index, mapping faiss errors to IndexCorrupt."""
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorrupt(f"faiss cannot read {path}: {exc}; {_REBUILD_HINT}") from exc
    return _checked_kind(index, path)


def _checked_kind(index: faiss.Index, path: Path) -> faiss.Index:
    """The index, if it is a kind this shop builds (faiss returns it as its concrete class)."""
    # No faiss.downcast_index here: the new wrapper would not own the index, and the old
    # one, owning it, would free it when dropped.
    try:
        index_kinds.kind_of(index)
    except TypeError as exc:
        raise IndexCorrupt(f"{path} holds an unexpected index: {exc}; {_REBUILD_HINT}") from exc
    return index


def _check_consistent(index: faiss.Index, manifest: Manifest, path: Path) -> None:
    """Refuse an index whose shape or metric disagrees with its manifest."""
    if index.d != manifest.dim or index.ntotal != manifest.count:
        raise IndexCorrupt(
            f"{path} has {index.ntotal} vectors of dim {index.d}, but the manifest says "
            f"{manifest.count} of dim {manifest.dim}; {_REBUILD_HINT}"
        )
    if manifest.metric != METRIC or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexCorrupt(f"{path} does not use the {METRIC} metric; {_REBUILD_HINT}")
    kind = index_kinds.kind_of(index)
    if kind != manifest.index_kind:
        raise IndexCorrupt(
            f"{path} is a {kind} index but the manifest says {manifest.index_kind}; {_REBUILD_HINT}"
        )


def _previous_manifest(directory: Path) -> Manifest | None:
    """Return the current manifest before a save, tolerating a broken one."""
    try:
        return read_manifest(directory)
    except IndexCorrupt as exc:
        # A broken manifest must not block the rebuild that repairs it.
        logger.warning("overwriting a broken manifest: %s", exc)
        return None


def _next_version(directory: Path, previous: Manifest | None) -> int:
    """Return a version above the manifest's and above any index file on disk."""
    # Files count too: a writer that crashed before its manifest still used up that number.
    versions = [int(m.group(1)) for m in map(_INDEX_FILE_RE.match, _listdir(directory)) if m]
    if previous is not None:
        versions.append(previous.version)
    return max(versions, default=0) + 1


def _index_file_name(version: int) -> str:
    """Return the file name of an index version."""
    return f"index-{version:06d}.faiss"


def _manifest_bytes(manifest: Manifest) -> bytes:
    """Serialize a manifest as readable JSON."""
    return (json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    # Same directory, so os.replace is a rename within one filesystem (atomic).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable across a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(directory: Path, keep: set[str]) -> None:
    """Delete index files other than ``keep`` (the current one and the one readers may hold)."""
    for name in _listdir(directory):
        if (_INDEX_FILE_RE.match(name) or _POST_FILE_RE.match(name)) and name not in keep:
            with suppress(FileNotFoundError):
                (directory / name).unlink()


def _listdir(directory: Path) -> list[str]:
    """Return the names in ``directory``, or none if it does not exist."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------- writer lock


@contextmanager
def writer_lock(directory: PathLike, timeout: float = 60.0) -> Iterator[None]:
    """Hold the single-writer lock of an index directory, waiting up to ``timeout`` seconds."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    with open(path, "a+b") as f:
        _acquire(f.fileno(), path, timeout)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _acquire(fd: int, path: Path, timeout: float) -> None:
    """Poll a non-blocking flock, since flock itself has no timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WriterLockTimeout(
                    f"another process has been writing the index (lock {path}) for more than "
                    f"{timeout:g}s; wait for it to finish or stop it"
                ) from None
            time.sleep(0.05)


# ---------------------------------------------------------------------------- serving


class IndexReader:
    """Thread-safe holder of the current index for a serving process, reloading new versions."""

    def __init__(
        self,
        directory: PathLike,
        *,
        expected_model_id: str | None = None,
        check_interval: float = 1.0,
        mmap: bool = True,
    ) -> None:
        """Remember where the index is; nothing is loaded until ``current()``."""
        self.directory = Path(directory)
        self.expected_model_id = expected_model_id
        self.check_interval = check_interval
        self.mmap = mmap
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._loaded: tuple[faiss.Index, Manifest] | None = None
        self._checked_at = float("-inf")
        self._failed_version: int | None = None

    def current(self) -> tuple[faiss.Index, Manifest]:
        """Return the current (index, manifest), reloading if the manifest version changed."""
        with self._lock:
            now = time.monotonic()
            if self._loaded is None:
                self._checked_at = now
                self._refresh()  # the first load: there is nothing to serve meanwhile
                return self._loaded
            if now - self._checked_at < self.check_interval:
                return self._loaded
            self._checked_at = now
        # A reload (hashing and mapping a large file) runs outside the lock, so the other
        # threads of this process keep answering with the loaded version meanwhile.
        with self._reload_lock:
            self._refresh()
        return self._loaded

    def invalidate(self) -> None:
        """Make the next ``current()`` re-read the manifest and retry a failed version."""
        with self._lock:
            self._checked_at = float("-inf")
            self._failed_version = None

    def _refresh(self) -> None:
        """Load the manifest's version if it is new; keep the old index if that fails."""
        if self._loaded is None:
            self._loaded = load_index(
                self.directory, expected_model_id=self.expected_model_id, mmap=self.mmap
            )
            return
        try:
            manifest = read_manifest(self.directory)
        except IndexCorrupt as exc:
            logger.warning("keeping index version %s: %s", self._loaded[1].version, exc)
            return
        if manifest is None or manifest.version in (self._loaded[1].version, self._failed_version):
            return
        try:
            self._loaded = load_index(
                self.directory, expected_model_id=self.expected_model_id, mmap=self.mmap
            )
        except (IndexNotFound, IndexCorrupt, IndexMismatch) as exc:
            # Remember the bad version so it is not re-hashed and re-logged on every request.
            self._failed_version = manifest.version
            logger.warning(
                "keeping index version %s; cannot load version %s: %s",
                self._loaded[1].version,
                manifest.version,
                exc,
            )
